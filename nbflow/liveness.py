"""Whether the process behind a run, a claimed slot or file, or the scheduler lease is still there. One rule:

- on this host, the holder's pid must exist, not be a zombie, and have been created no later than the holder
  started (a pid reused by a later process is not the holder);
- on another host nothing can be asked, so the holder is gone once it has not written a heartbeat for `ttl`
  seconds.
"""
from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass

HOST = socket.gethostname()
RUN_TTL_SECONDS = 120.0  # runs write a heartbeat every 5 s
LEASE_TTL_SECONDS = 15.0  # the scheduler renews its lease every 2 s
PID_CLOCK_SLACK = 1.0  # process creation times and our timestamps come from different clocks


@dataclass(frozen=True)
class Holder:
    """Who holds something: a runner process, a scheduler, a backfill."""

    host: str | None
    pid: int | None
    since: float | None = None  # when it took hold: a process created later with the same pid is not it
    heartbeat_at: float | None = None


def pid_alive(pid: int, since: float | None = None) -> bool:
    """The process exists, is not a zombie, and (with `since`) was created before that time."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return since is None or proc.create_time() <= since + PID_CLOCK_SLACK
    except psutil.NoSuchProcess:
        return False


def gone(holder: Holder, ttl: float, now: float | None = None) -> bool:
    """True when the holder cannot be alive any more (see the module's rule)."""
    if holder.host == HOST:
        if holder.pid == os.getpid():
            return False
        return not holder.pid or not pid_alive(holder.pid, holder.since)
    last = holder.heartbeat_at or holder.since or 0.0
    return (now if now is not None else time.time()) - last > ttl


def command_line(pid: int) -> list[str]:
    """The process's command line ([] when it is gone or not ours to read)."""
    import psutil

    try:
        return list(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def new_owner(kind: str) -> str:
    """An owner id for claimed work and the lease: kind, host, pid and a random token (two schedulers in one
    process are two owners)."""
    return f"{kind}:{HOST}:{os.getpid()}:{secrets.token_hex(3)}"


def parse_owner(owner: str | None) -> tuple[str, Holder]:
    """(kind, holder) of an owner id; ('', Holder(None, None)) when it cannot be read."""
    parts = (owner or "").split(":")
    if len(parts) < 4 or not parts[2].isdigit():
        return "", Holder(None, None)
    return parts[0], Holder(parts[1], int(parts[2]))
