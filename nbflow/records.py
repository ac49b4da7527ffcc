"""What the store hands out: small frozen records, one per table row kind, instead of `SELECT *` dicts.

The store selects exactly these fields, so renaming a column breaks one place and mypy points at every reader.
`as_json` gives the plain dict the CLI's `--json` and the REST API print.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .states import AttemptState, ErrorKind, RunState, TaskState

FileRecord = tuple[str, str, int]  # (dataset path, sha256 hex, size in bytes)


def as_json(record: Any) -> Any:
    """A record (or a list or dict of them) as plain JSON-ready values."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: as_json(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, (list, tuple)):
        return [as_json(r) for r in record]
    if isinstance(record, Mapping):
        return {str(k): as_json(v) for k, v in record.items()}
    return record


def duration(started: float | None, ended: float | None) -> float | None:
    """Seconds between two timestamps, when both are known."""
    return round(ended - started, 3) if started is not None and ended is not None else None


@dataclass(frozen=True)
class RunRecord:
    id: str
    project: str  # the project's name (several projects may share one store)
    trigger: str
    logical_date: str | None
    parameters: Mapping[str, Any]
    selection: Mapping[str, Any]
    status: RunState
    created_at: float
    started_at: float | None
    ended_at: float | None
    host: str | None
    pid: int | None
    heartbeat_at: float | None
    schedule: str | None
    resumed_from: str | None

    @property
    def duration(self) -> float | None:
        return duration(self.started_at, self.ended_at)


@dataclass(frozen=True)
class TaskRecord:
    """A task in one run (skipped and upstream_failed tasks have no attempt)."""

    run_id: str
    task: str
    status: TaskState
    reason: str | None
    cache_key: str | None
    attempts: int
    started_at: float | None
    ended_at: float | None
    error: str | None
    error_cell: int | None
    artifact: str | None

    @property
    def duration(self) -> float | None:
        return duration(self.started_at, self.ended_at)


@dataclass(frozen=True)
class AttemptRecord:
    id: int
    run_id: str
    task: str
    number: int
    status: AttemptState
    started_at: float | None
    ended_at: float | None
    cache_key: str | None
    artifact: str | None
    error_kind: ErrorKind | None
    error: str | None
    error_cell: int | None
    ename: str | None
    evalue: str | None
    log: str | None
    host: str | None
    pid: int | None
    fingerprint: str | None
    kernel_start: str | None  # how the kernel started: "fork" (from the template) or "spawn" (launched); None if it never did
    kernel_start_ms: float | None  # how long from asking for the kernel to its being ready

    @property
    def duration(self) -> float | None:
        return duration(self.started_at, self.ended_at)


@dataclass(frozen=True)
class RunDetail:
    """One run as people look at it: the run, its tasks and every attempt, with liveness applied."""

    run: RunRecord
    tasks: tuple[TaskRecord, ...]
    attempts: tuple[AttemptRecord, ...]
    partial: frozenset[str] = field(default_factory=frozenset)  # executed notebooks saved mid-run, never finished


def record_fields(cls: type) -> tuple[str, ...]:
    """The column names a record is read from, in order."""
    return tuple(f.name for f in dataclasses.fields(cls))
