"""What the store hands out: small frozen records, one per table row kind, instead of `SELECT *` dicts.

The store selects exactly these fields, so renaming a column breaks one place and mypy points at every reader.
`as_json` gives the plain dict the CLI's `--json` and the REST API print.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .states import AttemptState, BreakerState, DeliveryState, ErrorKind, RunState, Severity, TaskState

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
    code_commit: str | None = None  # the project's git commit when the run started (None: not in git)
    code_dirty: bool | None = None  # whether tracked files differed from that commit
    code_changed: tuple[str, ...] | None = None  # task notebooks (project-relative) that differ from it or are untracked

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
    error_execution_count: int | None = None  # the failing cell's In [n] in the executed notebook
    progress: Mapping[str, Any] | None = None  # while running: {"cell": 1-based, "cells": n, "since": cell start}

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
    host: str | None  # the machine the attempt ran on (a Dask worker's host)
    pid: int | None  # the process that ran it there (the runner, or the Dask worker)
    fingerprint: str | None
    worker: str | None = None  # the Dask worker's address; None when it ran in the runner
    peak_rss: int | None = None  # the kernel's peak resident memory, its children included (bytes)
    cpu_seconds: float | None = None  # CPU time the kernel and its children used
    resources: Mapping[str, Any] | None = None  # what was applied: cores, gpus, memory (bytes) and memory_by
    error_execution_count: int | None = None  # the failing cell's In [n] in the executed notebook
    kernel_start: str | None = None  # how the kernel started: "fork" (from the template) or "spawn" (launched); None if it never did
    kernel_start_ms: float | None = None  # how long from asking for the kernel to its being ready

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


@dataclass(frozen=True)
class ClaimRecord:
    """A dataset claimed by a run recorded running, with its runner's whereabouts (for the liveness rule)."""

    run_id: str
    project: str  # '' for a path outside every project
    path: str
    mode: str  # "read" or "write"
    host: str | None
    pid: int | None
    started_at: float | None
    heartbeat_at: float | None


@dataclass(frozen=True)
class DeliveryRecord:
    """One alert sent (or being sent) to one target."""

    id: int
    alert_id: int
    target: str  # shown with its secrets masked (Apprise's privacy form)
    status: DeliveryState
    attempts: int
    error: str | None
    owner: str | None  # the process delivering it (a pending delivery whose process is gone shows failed)
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class AlertRecord:
    """One alert raised: routed to its severity's targets, grouped into an open failure streak, or rate-limited."""

    id: int
    project: str
    created_at: float
    severity: Severity
    event: str  # task_failed, check_failed, run_failed, retry, slow, sla_at_risk, sla_missed, recovered, ...
    key: str | None  # the failure streak it opened, joined or closed ("task:clean", "run")
    run_id: str | None
    task: str | None
    title: str
    body: str
    outcome: str  # routed | grouped | rate_limited
    deliveries: tuple[DeliveryRecord, ...] = ()


@dataclass(frozen=True)
class BreakerRecord:
    """A circuit breaker's stored state (open or closed; half-open is computed from the cooldown)."""

    project: str
    name: str
    state: BreakerState
    failures: tuple[float, ...]  # times of the counted failures still inside the window
    opened_at: float | None
    last_error: str | None
    probe_owner: str | None  # the task running as the half-open probe: "run_id/task@host:pid"
    probe_at: float | None
    updated_at: float


def record_fields(cls: type) -> tuple[str, ...]:
    """The column names a record is read from, in order."""
    return tuple(f.name for f in dataclasses.fields(cls))
