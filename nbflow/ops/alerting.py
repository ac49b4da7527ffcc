"""The run observer that turns run and task outcomes into alerts, and the per-run router that applies the
`alert = ...` levels of tasks and schedules before handing alerts to the AlertService."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..engine.observe import FileRecords, RunContext, RunObserver
from ..executors.base import AttemptResult
from ..states import RunState, Severity, TaskState
from .alerts import FAILURES, Alert


def error_text(result: AttemptResult | None, fallback: str | None, cell: int | None = None) -> str | None:
    """'cell 3: KeyError: 'price'' from an attempt (ename: evalue when a cell raised), else the recorded error."""
    if result is not None and (result.ename or result.error):
        what = f"{result.ename}: {result.evalue}" if result.ename and result.ename != "SystemExit" else result.error
        cell = result.error_cell
    else:
        what = fallback
    if not what:
        return None
    return f"cell {cell}: {what}" if cell is not None else what


class AlertRouter:
    """One run's way to the AlertService: fills in the trigger, applies the task's or schedule's level (to failures;
    "off" silences everything of that task or schedule). `sink` None: alerts are off (`--no-alerts`)."""

    def __init__(self, sink: Callable[[Alert], None] | None, task_levels: Mapping[str, str]) -> None:
        self.sink, self.task_levels = sink, task_levels
        self.schedule_level: str | None = None
        self.trigger: str | None = None

    def __call__(self, alert: Alert) -> None:
        if self.sink is None:
            return
        level = self.task_levels.get(alert.task) if alert.task else None
        level = level or self.schedule_level
        if level == "off":
            return
        if level and alert.event in FAILURES:
            alert = dataclasses.replace(alert, severity=Severity(level))
        if alert.trigger is None and self.trigger:
            alert = dataclasses.replace(alert, trigger=self.trigger)
        self.sink(alert)


class RunAlerts(RunObserver):
    """task_failed / check_failed (one per task per failure streak), retry (the first of each task in a run),
    recovered (a failing task or pipeline succeeded), run_failed (failed with no failing task of its own: its tasks
    were blocked), run_succeeded."""

    def __init__(self, router: AlertRouter, project: str) -> None:
        self.router, self.project = router, project
        self.first_start: dict[str, float] = {}
        self.last: dict[str, AttemptResult] = {}
        self.retried: set[str] = set()
        self.task_failures = 0
        self.blocked: list[tuple[str, str]] = []
        self.started_at: float | None = None

    async def run_started(self, run: RunContext) -> None:
        record = await run.db(run.store.get_run, run.run_id)
        self.router.trigger, self.started_at = record.trigger, record.started_at
        if record.schedule:
            row = await run.db(run.store.schedule_row, record.schedule)
            self.router.schedule_level = row.get("alert") if row else None

    async def attempt_started(self, run: RunContext, task: str, number: int, reads: FileRecords) -> None:
        self.first_start.setdefault(task, time.time())

    async def attempt_finished(self, run: RunContext, task: str, number: int, result: AttemptResult, reads: FileRecords,
                               writes: FileRecords) -> None:
        self.last[task] = result

    async def retrying(self, run: RunContext, task: str, number: int, result: AttemptResult, delay: float) -> None:
        if task in self.retried:
            return
        self.retried.add(task)
        self.router(Alert("retry", self.project, f"task {task} failed attempt {number}, retrying in {delay:.0f} s",
                          run_id=run.run_id, task=task, status=f"attempt {number} failed", error=error_text(result, None),
                          duration=result.ended_at - result.started_at))

    async def task_changed(self, run: RunContext, task: str, status: TaskState, fields: Mapping[str, Any]) -> None:
        if status in (TaskState.FAILED, TaskState.CHECK_FAILED):
            self.task_failures += 1
            attempts = fields.get("attempts") or 0
            started, ended = self.first_start.get(task), fields.get("ended_at")
            check = status == TaskState.CHECK_FAILED
            self.router(Alert(
                "check_failed" if check else "task_failed", self.project,
                f"check failed in task {task}" if check else f"task {task} failed",
                run_id=run.run_id, task=task,
                status=f"{status} after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else str(status),
                error=error_text(self.last.get(task), fields.get("error"), fields.get("error_cell")),
                duration=ended - started if started and ended else None, detail=fields.get("reason") or None,
                opens=f"task:{task}"))
        elif status == TaskState.SUCCEEDED:
            started, ended = self.first_start.get(task), fields.get("ended_at")
            self.router(Alert("recovered", self.project, f"task {task} recovered", run_id=run.run_id, task=task,
                              status="succeeded", duration=ended - started if started and ended else None,
                              closes=f"task:{task}"))
        elif status == TaskState.BLOCKED:
            self.blocked.append((task, str(fields.get("reason") or "")))

    async def run_finished(self, run: RunContext, status: RunState) -> None:
        took = time.time() - self.started_at if self.started_at else None
        if status == RunState.SUCCEEDED:
            self.router(Alert("run_succeeded", self.project, "run succeeded", run_id=run.run_id, status="succeeded",
                              duration=took, closes="run"))
        elif status == RunState.FAILED and not self.task_failures:
            first = self.blocked[0] if self.blocked else None
            summary = (f"run failed: {len(self.blocked)} task{'s' if len(self.blocked) != 1 else ''} blocked" if self.blocked
                       else "run failed")
            self.router(Alert("run_failed", self.project, summary, run_id=run.run_id, status="failed", duration=took,
                              task=None, error=f"{first[0]}: {first[1]}" if first else None, opens="run",
                              detail=("blocked: " + ", ".join(t for t, _ in self.blocked)) if self.blocked else None))


def scheduler_alert(kind: str, data: Mapping[str, Any], project: str) -> Alert | None:
    """The alert a scheduler event raises: lease lost and abandoned work (critical), a skipped slot (warning)."""
    schedule, sensor = data.get("schedule"), data.get("sensor")
    trigger = f"schedule:{schedule}" if schedule else f"sensor:{sensor}" if sensor else None
    what = (f"slot {data.get('run_date')} of schedule {schedule}" if schedule
            else f"file {data.get('path')} of sensor {sensor}" if sensor else "")
    if kind == "lease_lost":
        return Alert("lease_lost", project, "the scheduler lost the store's lease", trigger="scheduler",
                     detail=f"another scheduler took over; this one fires nothing more ({data.get('running', 0)} of its "
                            f"runs go on)")
    if kind == "slot_skipped":
        return Alert("slot_skipped", project, f"{what} skipped", trigger=trigger, status="skipped", detail=data.get("reason"))
    if kind == "recovered":
        return Alert("slot_abandoned", project, f"{what} was abandoned by a stopped scheduler", trigger=trigger,
                     run_id=data.get("run_id"), status="abandoned", detail=f"this scheduler took it over: {data.get('action')}")
    return None
