"""Duration forecasts and SLAs, from the store's history of successful attempts.

Pure part: each task's expected duration (median, p90, p95 of its last N successes), the run's finish along its
critical path (and never sooner than the remaining work spread over `jobs`), the "slow" threshold
max(p95 * 2, p95 + 60 s). `ForecastWatch` is the run's observer: it sends the CLI an ETA, warns once per task
that runs slow, and raises `sla_at_risk` (the forecast misses the deadline) and `sla_missed` (the deadline passed).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..engine.observe import FileRecords, RunContext, RunObserver
from ..model import Pipeline
from ..states import FINAL, RunState, TaskState
from .alerts import Alert, clock_time, human
from .settings import ForecastSettings

if TYPE_CHECKING:
    from ..records import RunRecord


@dataclass(frozen=True)
class Estimate:
    """A task's expected duration from its recent successful attempts."""

    median: float
    p90: float
    p95: float
    n: int

    def usually(self) -> str:
        """'usually 3–4 min' (or 'usually 40 s' when the two agree)."""
        low, high = human(self.median), human(self.p90)
        if low == high:
            return f"usually {low}"
        lu, hu = low.rsplit(" ", 1), high.rsplit(" ", 1)
        return f"usually {lu[0]}–{high}" if lu[1] == hu[1] else f"usually {low}–{high}"

    def as_json(self) -> dict[str, Any]:
        return {"median": round(self.median, 3), "p90": round(self.p90, 3), "p95": round(self.p95, 3), "samples": self.n}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    s = sorted(values)
    if not s:
        raise ValueError("no values")
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def estimate(durations: Sequence[float], min_history: int = 1) -> Estimate | None:
    """None with fewer than `min_history` samples."""
    if len(durations) < max(1, min_history):
        return None
    return Estimate(percentile(durations, 50), percentile(durations, 90), percentile(durations, 95), len(durations))


def estimates(history: Mapping[str, Sequence[float]], min_history: int) -> dict[str, Estimate]:
    return {t: e for t, d in history.items() if (e := estimate(d, min_history)) is not None}


def slow_after(e: Estimate, settings: ForecastSettings) -> float:
    """Seconds of running after which a task counts as slow."""
    return max(e.p95 * settings.slow_factor, e.p95 + settings.slow_margin)


@dataclass(frozen=True)
class Eta:
    """When the run's unfinished tasks should end."""

    finish: float | None  # None: no unfinished task has a history
    remaining: float
    finishes: Mapping[str, float]  # expected end of each unfinished task
    critical_path: tuple[str, ...]
    unknown: tuple[str, ...]  # unfinished tasks without enough history (counted as taking no time)

    def as_json(self) -> dict[str, Any]:
        return {"eta": None if self.finish is None else round(self.finish, 3), "remaining": round(self.remaining, 3),
                "critical_path": list(self.critical_path), "unknown": list(self.unknown),
                "tasks": {t: round(f, 3) for t, f in self.finishes.items()}}


def task_remaining(e: Estimate | None, started: float | None, now: float) -> float:
    """Expected seconds left: the median from the start, or if it already ran past its median, up to its p90."""
    if e is None:
        return 0.0
    if started is None:
        return e.median
    elapsed = max(0.0, now - started)
    return e.median - elapsed if elapsed < e.median else max(0.0, e.p90 - elapsed)


def eta(pipeline: Pipeline, tasks: Iterable[str], states: Mapping[str, TaskState], started: Mapping[str, float],
        known: Mapping[str, Estimate], now: float, jobs: int = 1) -> Eta:
    """The run's finish along the critical path of its unfinished tasks (upstream ends before downstream starts),
    and no earlier than their summed expected work spread over `jobs`."""
    selected = [t for t in pipeline.order if t in set(tasks)]
    finishes: dict[str, float] = {}
    via: dict[str, str | None] = {}
    work = 0.0
    for t in selected:
        if states.get(t, TaskState.PENDING) in FINAL:
            continue
        ups = [(finishes[u], u) for u in pipeline.tasks[t].upstream if u in finishes]
        start, before = max(ups) if ups and max(ups)[0] > now else (now, None)
        left = task_remaining(known.get(t), started.get(t), now)
        work += left
        finishes[t], via[t] = start + left, before
    unknown = tuple(t for t in finishes if t not in known)
    if not finishes or len(unknown) == len(finishes):
        return Eta(None, 0.0, finishes, (), unknown)
    last = max(finishes, key=lambda t: finishes[t])
    path = [last]
    while via.get(path[-1]):
        path.append(via[path[-1]])  # type: ignore[arg-type]
    finish = max(finishes[last], now + work / max(1, jobs))
    return Eta(finish, max(0.0, finish - now), finishes, tuple(reversed(path)), unknown)


def sla_status(deadline: float, finish: float | None, ended: float | None, now: float) -> str | None:
    """'missed' when the deadline passed unmet, 'at_risk' when the forecast ends after it, else None."""
    if ended is not None:
        return "missed" if ended > deadline else None
    if now > deadline:
        return "missed"
    if finish is not None and finish > deadline:
        return "at_risk"
    return None


class ForecastWatch(RunObserver):
    """One run's ETA (sent to the CLI as 'eta' events), slow-task warnings and SLA alerts."""

    def __init__(self, settings: ForecastSettings, task_sla: Mapping[str, float], raise_alert: Callable[[Alert], None],
                 project: str, clock: Callable[[], float] = time.time, tick: float = 5.0) -> None:
        self.settings, self.task_sla, self.raise_alert, self.project = settings, task_sla, raise_alert, project
        self.clock, self.tick = clock, tick
        self.known: dict[str, Estimate] = {}
        self.states: dict[str, TaskState] = {}
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.timers: dict[str, asyncio.Task[None]] = {}
        self.said: set[str] = set()  # alerts raised once per run: "slow:T", "sla:run", "sla:T", with :missed
        self.record: RunRecord | None = None
        self.reference = 0.0  # SLAs count from here: the slot of a scheduled run, else the run's start
        self.run_sla: float | None = None
        self.ticker: asyncio.Task[None] | None = None

    async def run_started(self, run: RunContext) -> None:
        self.record = await run.db(run.store.get_run, run.run_id)
        history = await run.db(run.store.task_durations, list(run.tasks), self.settings.history)
        self.known = estimates(history, self.settings.min_history)
        self.states = {t: TaskState.PENDING for t in run.tasks} | {t: TaskState.SUCCEEDED for t in run.done}
        self.reference = self.record.started_at or self.clock()
        if self.record.schedule and self.record.trigger == f"schedule:{self.record.schedule}":
            row = await run.db(run.store.schedule_row, self.record.schedule)
            self.run_sla = row.get("sla") if row else None
            slot = await run.db(run.store.slot_time, run.run_id)
            self.reference = slot if slot is not None else self.reference
        self._update(run)
        if self.tick > 0:
            self.ticker = asyncio.create_task(self._ticking(run))

    async def _ticking(self, run: RunContext) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self._update(run)

    def eta(self, run: RunContext) -> Eta:
        return eta(run.pipeline, self.states, self.states, self.started, self.known, self.clock(), run.jobs)

    def _update(self, run: RunContext) -> None:
        now = self.clock()
        forecast = self.eta(run)
        run.emit("eta", {"run_id": run.run_id, **forecast.as_json()})
        if self.run_sla is not None:
            done = all(s in FINAL for s in self.states.values())
            self._sla(run, "run", None, self.reference + self.run_sla, forecast.finish,
                      max(self.ended.values(), default=now) if done else None, now)
        for task, sla in self.task_sla.items():
            if task in self.states:
                self._sla(run, f"task {task}", task, self.reference + sla, forecast.finishes.get(task), self.ended.get(task), now)

    def _sla(self, run: RunContext, what: str, task: str | None, deadline: float, finish: float | None, ended: float | None,
             now: float) -> None:
        found = sla_status(deadline, finish, ended, now)
        key = f"sla:{task or 'run'}"
        if found is None or f"{key}:{found}" in self.said or (found == "at_risk" and f"{key}:missed" in self.said):
            return
        self.said.add(f"{key}:{found}")
        limit = (self.run_sla if task is None else self.task_sla[task]) or 0.0
        since = f"sla {human(limit)} from {clock_time(self.reference)}"
        if found == "missed":
            late = (ended or now) - deadline
            detail = (f"finished at {clock_time(ended)}, {human(late)} after its deadline {clock_time(deadline)} ({since})"
                      if ended else f"deadline {clock_time(deadline)} passed and it is still running ({since})")
            alert = Alert("sla_missed", self.project, f"{what} missed its SLA", run_id=run.run_id, task=task, detail=detail,
                          status="finished late" if ended else "running", trigger=self.record.trigger if self.record else None)
        else:
            detail = f"forecast finish {clock_time(finish or now)} is after its deadline {clock_time(deadline)} ({since})"
            alert = Alert("sla_at_risk", self.project, f"{what} is at risk of missing its SLA", run_id=run.run_id, task=task,
                          detail=detail, status="running", trigger=self.record.trigger if self.record else None)
        run.emit("warning", {"message": f"{alert.summary}: {detail}"})
        self.raise_alert(alert)

    async def task_changed(self, run: RunContext, task: str, status: TaskState, fields: Mapping[str, Any]) -> None:
        if task not in self.states:
            return
        self.states[task] = status
        if status in FINAL:
            self.ended[task] = float(fields.get("ended_at") or self.clock())
            timer = self.timers.pop(task, None)
            if timer:
                timer.cancel()
        self._update(run)

    async def attempt_started(self, run: RunContext, task: str, number: int, reads: FileRecords) -> None:
        now = self.clock()
        self.started.setdefault(task, now)
        self.states[task] = TaskState.RUNNING
        e = self.known.get(task)
        if e is not None and task not in self.timers and f"slow:{task}" not in self.said:
            self.timers[task] = asyncio.create_task(self._slow_after(run, task, e, slow_after(e, self.settings)))
        self._update(run)

    async def _slow_after(self, run: RunContext, task: str, e: Estimate, threshold: float) -> None:
        await asyncio.sleep(max(0.0, self.started[task] + threshold - self.clock()))
        if self.states.get(task) != TaskState.RUNNING or f"slow:{task}" in self.said:
            return
        self.said.add(f"slow:{task}")
        elapsed = self.clock() - self.started[task]
        summary = f"{task} slow: {human(elapsed)} so far, {e.usually()}"
        run.emit("warning", {"message": summary, "kind": "slow"})
        self.raise_alert(Alert("slow", self.project, summary, run_id=run.run_id, task=task, status="running",
                               duration=elapsed, trigger=self.record.trigger if self.record else None,
                               detail=f"slow means over max(p95 x {self.settings.slow_factor:g}, p95 + {human(self.settings.slow_margin)})"
                                      f" = {human(threshold)}; p95 of the last {e.n} successes is {human(e.p95)}"))

    async def run_finished(self, run: RunContext, status: RunState) -> None:
        for t in [self.ticker, *self.timers.values()]:
            if t is not None:
                t.cancel()
        if status != RunState.CANCELLED:
            self._update(run)
