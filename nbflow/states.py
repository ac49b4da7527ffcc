"""Every state and error kind nbflow records, as enums: the store, the engine, the CLI and the panel share them.

Each is a `str`, so it is stored, compared and serialised as its plain value ("running"), and a misspelt
member is an AttributeError instead of a state nobody handles.
"""
from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    """A str whose members print as their value (enum.StrEnum, which Python 3.10 lacks)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class TaskState(StrEnum):
    """A task in one run (run_tasks.status)."""

    PENDING = "pending"
    QUEUED = "queued"  # decided to run, waiting for a slot
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CHECK_FAILED = "check_failed"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"  # skipped as up to date
    CANCELLED = "cancelled"
    CRASHED = "crashed"  # shown, never stored: it was queued or running when its runner died
    BLOCKED = "blocked"  # not attempted: a circuit breaker of a service it uses (`uses:NAME`) is open


class RunState(StrEnum):
    """A run (runs.status)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CRASHED = "crashed"  # shown, never stored: recorded running, but its runner is gone


class AttemptState(StrEnum):
    """One attempt of a task (attempts.status)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CHECK_FAILED = "check_failed"
    CANCELLED = "cancelled"
    CRASHED = "crashed"  # shown, never stored: recorded running, but its runner is gone


class WorkState(StrEnum):
    """A schedule slot or a sensor file: a unit of scheduled work, claimed once (schedule_slots/sensor_files.status)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


class ErrorKind(StrEnum):
    """Why an attempt failed (attempts.error_kind)."""

    EXCEPTION = "exception"  # a cell raised
    EXIT = "exit"  # sys.exit(non-zero)
    CHECK = "check"  # a `check` cell raised: never retried
    TIMEOUT = "timeout"  # the task's timeout or a cell_timeout
    DEAD_KERNEL = "dead_kernel"
    NO_KERNEL = "no_kernel"  # the kernel is not installed
    MISSING_OUTPUT = "missing_output"  # a declared `writes:` file is not there after the run
    MISSING_INPUT = "missing_input"  # a declared `reads:` file is not there when the task is ready
    ARTIFACT = "artifact"  # the executed notebook could not be written
    CANCELLED = "cancelled"  # the run was interrupted
    ABANDONED = "abandoned"  # the runner died during the attempt (set by resume)
    INTERNAL = "internal"  # nbflow itself failed
    WORKER_LOST = "worker_lost"  # the Dask worker running the attempt died or left the cluster (retried)
    MEMORY_EXCEEDED = "memory_exceeded"  # the kernel went over its memory: limit (not retried)


DONE_OK = frozenset({TaskState.SUCCEEDED, TaskState.SKIPPED})
BAD = frozenset({TaskState.FAILED, TaskState.CHECK_FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED, TaskState.CRASHED,
                 TaskState.BLOCKED})
FINAL = DONE_OK | BAD
UNFINISHED = frozenset({TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING})


class Severity(StrEnum):
    """How loud an alert is; each routes to the targets listed under its name in [alerts]."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class DeliveryState(StrEnum):
    """One alert sent to one target (alert_deliveries.status)."""

    PENDING = "pending"  # not delivered yet: retrying, or its process exited before it could
    SENT = "sent"
    FAILED = "failed"  # every attempt failed


class BreakerState(StrEnum):
    """A circuit breaker of an outside service (breakers.state); half_open is shown, never stored."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # open, its cooldown over: the next task using it runs as a probe
NOT_RETRIED = frozenset({ErrorKind.CHECK, ErrorKind.NO_KERNEL, ErrorKind.MISSING_INPUT, ErrorKind.CANCELLED,
                         ErrorKind.MEMORY_EXCEEDED})
