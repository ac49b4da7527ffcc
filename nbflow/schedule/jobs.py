"""What the scheduler and backfill share: how they start a run (the Launcher), who owns a claimed job, and
whether a claimed job was abandoned by a process that is gone."""
from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

INTERRUPTED = "the scheduler stopped during this run; the next scheduler resumes it"


@dataclass(frozen=True)
class RunRequest:
    """One pipeline run to start: what Project.run_async gets."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    only: tuple[str, ...] = ()
    trigger: str = "schedule"
    logical_date: str | None = None
    schedule: str | None = None
    jobs: int | None = None


class Launcher(Protocol):
    """Starts and resumes pipeline runs. The project's launcher runs them in this process's event loop
    (nbflow.schedule.launch); tests pass a fake."""

    async def run(self, request: RunRequest, started: Callable[[str], None]) -> str:
        """Run to the end; call `started(run_id)` once the run is recorded; return its final status."""
        ...

    async def resume(self, run_id: str) -> str:
        """Resume an interrupted or crashed run to the end; return its final status."""
        ...

    def liveness(self, run_id: str) -> str | None:
        """The run's status as the store shows it ('crashed' when its runner is gone); None if there is no such run."""
        ...


def new_owner(kind: str) -> str:
    """An owner id for claimed jobs and the lease: kind, host, pid and a random token (two schedulers in one
    process are two owners)."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def parse_owner(owner: str | None) -> tuple[str, str, int]:
    """(kind, host, pid) of an owner id; ('', '', 0) when it cannot be read."""
    parts = (owner or "").split(":")
    if len(parts) < 4 or not parts[2].isdigit():
        return "", "", 0
    return parts[0], parts[1], int(parts[2])


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def process_gone(owner: str | None) -> bool:
    """True when the owner ran on this host in a process that no longer exists."""
    _, host, pid = parse_owner(owner)
    return host == socket.gethostname() and pid != os.getpid() and pid > 0 and not pid_alive(pid)


def abandoned(row: Mapping[str, Any], me: str, lease_holder: str | None) -> bool:
    """A 'running' job whose owner cannot be running it: a process that is gone, or a scheduler that is not
    the lease holder (it lost the lease, so it stopped or was deposed)."""
    owner = row["owner"]
    if owner == me:
        return False
    if process_gone(owner):
        return True
    kind, _, _ = parse_owner(owner)
    return kind == "scheduler" and owner != lease_holder
