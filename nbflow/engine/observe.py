"""The engine's one seam for operations: observers it tells about each run, task and attempt, which may also keep
a task from starting (a circuit breaker). Alerts, breakers, forecasts and OpenLineage events are observers
(nbflow/ops/); the run loop knows only this interface.

An observer's hook runs in the engine's event loop and must not block it: store calls go through `run.db` (the
engine's StoreCalls thread), slow I/O to a thread of the observer's own. A hook that raises is logged and
ignored: operations never fail a run.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..executors.base import AttemptResult
from ..model import Config, Pipeline
from ..states import RunState, TaskState

if TYPE_CHECKING:
    from ..store import Store
    from .run import StoreCalls

log = logging.getLogger("nbflow.engine")
EventSink = Callable[[str, Mapping[str, Any]], None]
FileRecords = Sequence[tuple[str, str, int]]  # (path, sha256, size)


@dataclass(frozen=True)
class RunContext:
    """What an observer may know and use about the run being executed."""

    run_id: str
    parameters: Mapping[str, Any]
    tasks: tuple[str, ...]  # the tasks this execution runs (a resume: those left to do)
    done: tuple[str, ...]  # kept from before a resume
    jobs: int
    config: Config
    pipeline: Pipeline
    store: Store
    db: StoreCalls  # await run.db(run.store.method, ...): the engine's store thread
    emit: EventSink  # the caller's event sink (the CLI's progress display)


class RunObserver:
    """Every hook is a no-op here: override the ones you need."""

    async def run_started(self, run: RunContext) -> None:
        """The run is recorded and about to decide its first tasks."""

    async def admit(self, run: RunContext, task: str, attempt: int) -> str | None:
        """Before an attempt of a task that will run: None lets it start; a reason keeps it from starting."""
        return None

    async def task_changed(self, run: RunContext, task: str, status: TaskState, fields: Mapping[str, Any]) -> None:
        """A task's state was recorded (fields as recorded: reason, error, error_cell, attempts, ended_at, ...)."""

    async def attempt_started(self, run: RunContext, task: str, number: int, reads: FileRecords) -> None:
        """An attempt was recorded running; `reads` are the inputs hashed for it."""

    async def attempt_finished(self, run: RunContext, task: str, number: int, result: AttemptResult, reads: FileRecords,
                               writes: FileRecords) -> None:
        """An attempt ended and was recorded, with what it read and wrote."""

    async def retrying(self, run: RunContext, task: str, number: int, result: AttemptResult, delay: float) -> None:
        """Attempt `number` failed and the task will be tried again after `delay` seconds."""

    async def run_finished(self, run: RunContext, status: RunState) -> None:
        """The run's final status was recorded (also when it was cancelled)."""


class Observers:
    """The engine's list of observers: calls each hook in turn, logging and swallowing what one raises."""

    def __init__(self, observers: Sequence[RunObserver] = ()) -> None:
        self.observers = list(observers)

    async def _each(self, hook: str, *args: Any) -> list[Any]:
        out = []
        for o in self.observers:
            try:
                out.append(await getattr(o, hook)(*args))
            except Exception:  # noqa: BLE001 - an observer never fails the run
                log.exception("observer %s failed in %s", type(o).__name__, hook)
        return out

    async def run_started(self, run: RunContext) -> None:
        await self._each("run_started", run)

    async def admit(self, run: RunContext, task: str, attempt: int) -> str | None:
        """The first reason an observer gives to keep the task from starting, else None."""
        for o in self.observers:
            try:
                reason: str | None = await o.admit(run, task, attempt)
            except Exception:  # noqa: BLE001 - a broken gate lets the task run
                log.exception("observer %s failed in admit", type(o).__name__)
                continue
            if reason:
                return reason
        return None

    async def task_changed(self, run: RunContext, task: str, status: TaskState, fields: Mapping[str, Any]) -> None:
        await self._each("task_changed", run, task, status, fields)

    async def attempt_started(self, run: RunContext, task: str, number: int, reads: FileRecords) -> None:
        await self._each("attempt_started", run, task, number, reads)

    async def attempt_finished(self, run: RunContext, task: str, number: int, result: AttemptResult, reads: FileRecords,
                               writes: FileRecords) -> None:
        await self._each("attempt_finished", run, task, number, result, reads, writes)

    async def retrying(self, run: RunContext, task: str, number: int, result: AttemptResult, delay: float) -> None:
        await self._each("retrying", run, task, number, result, delay)

    async def run_finished(self, run: RunContext, status: RunState) -> None:
        await self._each("run_finished", run, status)
