"""File-arrival sensors: which files match a glob, and when a file counts as complete (stable)."""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from ..paths import is_url, list_files

FileStat = tuple[str, int, int]  # (project-relative posix path, size in bytes, mtime in ns)


def scan(root: str, pattern: str) -> list[FileStat]:
    """The files under `root` that `pattern` names (the path rule of nbflow/paths.py: wildcards skip dot-files), sorted."""
    out: list[FileStat] = []
    for path in list_files(pattern, root):
        if is_url(path):  # an object: its size and modification time from the store's metadata
            from ..storage import stat

            try:
                _, size, mtime_ns = stat(path)
            except FileNotFoundError:
                continue
            out.append((path, size, mtime_ns))
            continue
        try:
            st = os.stat(os.path.join(root, path))
        except OSError:  # gone between listing and stat
            continue
        out.append((path, st.st_size, st.st_mtime_ns))
    return out


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: dt.datetime


class Stability:
    """Remembers each candidate file's size and mtime; a file is stable once both stayed unchanged for
    `stable_seconds` by the clock. In memory only: after a restart a file is watched again from scratch,
    which only delays it (files already triggered are remembered in the store)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], _Seen] = {}

    def observe(self, sensor: str, stat: FileStat, now: dt.datetime, stable_seconds: float) -> bool:
        """Record what the file looks like now; True when it has not changed for `stable_seconds`."""
        path, size, mtime_ns = stat
        key = (sensor, path)
        seen = self._seen.get(key)
        if seen is None or (seen.size, seen.mtime_ns) != (size, mtime_ns):
            self._seen[key] = _Seen(size, mtime_ns, now)
            return stable_seconds <= 0
        return (now - seen.since).total_seconds() >= stable_seconds

    def waiting(self, sensor: str) -> dict[str, dt.datetime]:
        """Paths still being watched for this sensor, with when they last changed."""
        return {p: s.since for (name, p), s in self._seen.items() if name == sensor}

    def forget(self, sensor: str, path: str) -> None:
        self._seen.pop((sensor, path), None)

    def prune(self, sensor: str, present: set[str]) -> None:
        """Drop files that disappeared before they became stable."""
        for key in [k for k in self._seen if k[0] == sensor and k[1] not in present]:
            del self._seen[key]
