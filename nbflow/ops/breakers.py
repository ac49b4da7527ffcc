"""Circuit breakers for the outside services tasks declare with `uses:NAME`.

Closed: tasks run, and their outage-like failures are counted. `failures` of them within `window` open it: tasks
using it end `blocked` (not attempted, no kernel started) with the reason and the time of the next probe. After
`cooldown` it is half-open: the next task using it runs as the probe (one at a time); success closes it, failure
opens it again. Check failures never count (a data problem is not an outage), nor cancellations, missing inputs or
outputs, or nbflow's own errors. The state is in the store, so scheduled, backfill and manual runs share it.

The transitions are pure functions of (spec, stored record, now); the store applies them in one transaction.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.observe import FileRecords, RunContext, RunObserver
from ..executors.base import AttemptResult
from ..liveness import HOST, Holder, gone
from ..records import BreakerRecord
from ..states import AttemptState, BreakerState, ErrorKind
from .settings import BreakerSpec

if TYPE_CHECKING:
    from .alerts import Alert

COUNTED = frozenset({ErrorKind.EXCEPTION, ErrorKind.EXIT, ErrorKind.TIMEOUT, ErrorKind.DEAD_KERNEL})
PROBE_TTL_SECONDS = 6 * 3600.0  # a probe held by another host longer than this is taken as abandoned


def _at(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def fresh(name: str, now: float) -> BreakerRecord:
    return BreakerRecord("", name, BreakerState.CLOSED, (), None, None, None, None, now)


def shown_state(spec: BreakerSpec, rec: BreakerRecord | None, now: float) -> BreakerState:
    """closed, open, or half_open (open with its cooldown over)."""
    if rec is None or rec.state == BreakerState.CLOSED:
        return BreakerState.CLOSED
    return BreakerState.HALF_OPEN if now >= (rec.opened_at or 0) + spec.cooldown else BreakerState.OPEN


def next_probe(spec: BreakerSpec, rec: BreakerRecord | None) -> float | None:
    return None if rec is None or rec.state == BreakerState.CLOSED else (rec.opened_at or 0) + spec.cooldown


def recent(spec: BreakerSpec, rec: BreakerRecord | None, now: float) -> tuple[float, ...]:
    """The counted failures still inside the window."""
    return tuple(t for t in (rec.failures if rec else ()) if t > now - spec.window)


def counts(spec: BreakerSpec, result: AttemptResult) -> bool:
    """Whether a failed attempt counts against the service: an outage-like failure, of a listed exception if any."""
    if result.status != AttemptState.FAILED or result.error_kind not in COUNTED:
        return False
    return not spec.errors or (result.ename or "") in spec.errors


def probe_owner(run_id: str, task: str, pid: int) -> str:
    return f"{run_id}/{task}@{HOST}:{pid}"


def _probe_gone(owner: str, since: float | None, now: float) -> bool:
    _, _, where = owner.rpartition("@")
    host, _, pid = where.rpartition(":")
    if host == HOST and pid.isdigit():
        return gone(Holder(host, int(pid), since=since), ttl=PROBE_TTL_SECONDS, now=now)
    return now - (since or 0) > PROBE_TTL_SECONDS


@dataclass(frozen=True)
class Admission:
    kind: str  # go | probe | block
    reason: str | None = None


def admit(spec: BreakerSpec, rec: BreakerRecord | None, now: float, owner: str) -> tuple[BreakerRecord | None, Admission]:
    """May a task using this service start now? (new record to store or None, the answer)."""
    if rec is None or rec.state == BreakerState.CLOSED:
        return None, Admission("go")
    reopen = (rec.opened_at or 0) + spec.cooldown
    why = f"circuit breaker '{spec.name}' is open since {_at(rec.opened_at)}" + (f" ({rec.last_error})" if rec.last_error else "")
    if now < reopen:
        return None, Admission("block", f"{why}; next probe at {_at(reopen)}")
    if rec.probe_owner and rec.probe_owner != owner and not _probe_gone(rec.probe_owner, rec.probe_at, now):
        task = rec.probe_owner.split("@", 1)[0]
        return None, Admission("block", f"{why}; a probe ({task}) is running now")
    return dataclasses.replace(rec, probe_owner=owner, probe_at=now, updated_at=now), Admission("probe")


def release(rec: BreakerRecord | None, owner: str, now: float) -> tuple[BreakerRecord | None, None]:
    """Give a probe claim back without a verdict (the task was cancelled, or blocked by another breaker)."""
    if rec is None or rec.probe_owner != owner:
        return None, None
    return dataclasses.replace(rec, probe_owner=None, probe_at=None, updated_at=now), None


def settle(spec: BreakerSpec, rec: BreakerRecord | None, now: float, result: AttemptResult,
           owner: str) -> tuple[BreakerRecord | None, str | None]:
    """Record an attempt's outcome: (new record or None, transition: 'opened', 'reopened', 'closed' or None)."""
    rec = rec or fresh(spec.name, now)
    probing = rec.probe_owner == owner
    counted = counts(spec, result)
    error = f"{result.ename}: {result.evalue}" if result.ename else result.error
    if probing:
        if counted:
            return dataclasses.replace(rec, state=BreakerState.OPEN, failures=(now,), opened_at=now, last_error=error,
                                       probe_owner=None, probe_at=None, updated_at=now), "reopened"
        if result.status in (AttemptState.SUCCEEDED, AttemptState.CHECK_FAILED):  # the service answered
            return dataclasses.replace(rec, state=BreakerState.CLOSED, failures=(), opened_at=None, last_error=None,
                                       probe_owner=None, probe_at=None, updated_at=now), "closed"
        return release(rec, owner, now)[0], None
    if not counted:
        return None, None
    failures = recent(spec, rec, now) + (now,)
    if rec.state == BreakerState.CLOSED and len(failures) >= spec.failures:
        return dataclasses.replace(rec, state=BreakerState.OPEN, failures=failures, opened_at=now, last_error=error,
                                   updated_at=now), "opened"
    return dataclasses.replace(rec, failures=failures, last_error=error, updated_at=now), None


def reset(rec: BreakerRecord | None, now: float) -> tuple[BreakerRecord | None, BreakerRecord | None]:
    """Close by hand: (new record, the record before)."""
    name = rec.name if rec else ""
    return dataclasses.replace(rec or fresh(name, now), state=BreakerState.CLOSED, failures=(), opened_at=None, last_error=None,
                               probe_owner=None, probe_at=None, updated_at=now), rec


def describe(spec: BreakerSpec, rec: BreakerRecord | None, now: float, used_by: Sequence[str]) -> dict[str, object]:
    """A breaker as `nbflow breakers`, Project.breakers() and GET breakers show it."""
    state = shown_state(spec, rec, now)
    return {"name": spec.name, "state": state, "failures": len(recent(spec, rec, now)), "threshold": spec.failures,
            "window": spec.window, "cooldown": spec.cooldown, "breaker_errors": list(spec.errors),
            "opened_at": rec.opened_at if rec and state != BreakerState.CLOSED else None,
            "next_probe": next_probe(spec, rec), "last_error": rec.last_error if rec else None,
            "probe": rec.probe_owner.split("@", 1)[0] if rec and rec.probe_owner else None, "used_by": list(used_by)}


class BreakerGate(RunObserver):
    """Asks each breaker of a task's `uses:` services before each attempt, and tells them how it ended."""

    def __init__(self, specs: Mapping[str, BreakerSpec], raise_alert: Callable[[Alert], None], pid: int, project: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.specs, self.raise_alert, self.pid, self.project, self.clock = specs, raise_alert, pid, project, clock
        self.probes: dict[str, list[str]] = {}  # task -> the breakers it probes now

    def _uses(self, run: RunContext, task: str) -> list[str]:
        return [u for u in run.pipeline.tasks[task].uses if u in self.specs]

    async def admit(self, run: RunContext, task: str, attempt: int) -> str | None:
        owner = probe_owner(run.run_id, task, self.pid)
        taken: list[str] = []
        for name in self._uses(run, task):
            spec = self.specs[name]
            answer: Admission = await run.db(run.store.update_breaker, name,
                                             lambda rec, spec=spec: admit(spec, rec, self.clock(), owner))
            if answer.kind == "block":
                for other in taken:  # give back the probes taken for its other services
                    await run.db(run.store.update_breaker, other, lambda rec: release(rec, owner, self.clock()))
                self.probes.pop(task, None)
                return answer.reason
            if answer.kind == "probe":
                taken.append(name)
                run.emit("warning", {"message": f"circuit breaker '{name}' is half-open: {task} runs as its probe"})
        self.probes[task] = taken
        return None

    async def attempt_finished(self, run: RunContext, task: str, number: int, result: AttemptResult, reads: FileRecords,
                               writes: FileRecords) -> None:
        owner = probe_owner(run.run_id, task, self.pid)
        for name in self._uses(run, task):
            spec = self.specs[name]
            change: str | None = await run.db(run.store.update_breaker, name,
                                              lambda rec, spec=spec: settle(spec, rec, self.clock(), result, owner))
            if change:
                self._announce(run, name, change, task, result)
        self.probes.pop(task, None)

    def _announce(self, run: RunContext, name: str, change: str, task: str, result: AttemptResult) -> None:
        from .alerts import Alert, human

        spec = self.specs[name]
        error = f"{result.ename}: {result.evalue}" if result.ename else result.error
        if change == "closed":
            message = f"circuit breaker '{name}' closed: probe {task} succeeded"
            alert = Alert("breaker_closed", self.project, f"circuit breaker {name} closed", run_id=run.run_id, task=task,
                          status="closed", detail=f"the probe task {task} reached the service again")
        else:
            again = "re-opened: its probe failed" if change == "reopened" else \
                f"opened after {spec.failures} failure{'s' if spec.failures != 1 else ''} within {human(spec.window)}"
            reopen = _at(self.clock() + spec.cooldown)
            message = f"circuit breaker '{name}' {again}; tasks using it are blocked until {reopen}"
            alert = Alert("breaker_opened", self.project, f"circuit breaker {name} {again.split(':')[0]}", run_id=run.run_id,
                          task=task, status="open", error=error,
                          detail=f"tasks using {name} are blocked; next probe at {reopen}")
        run.emit("warning", {"message": message})
        self.raise_alert(alert)

