"""Alerts: what each one says, which severity each event has, and the AlertService that groups, rate-limits,
records and delivers them in the background. Raising an alert never blocks or fails a run: `raise_` only queues it.

Grouping: a failure opens a streak keyed by what failed ("task:clean", or "run" for a run that failed with no
failing task of its own); later failures while it is open are recorded `grouped`, not sent; a success closes it
with a "recovered" info. Streaks live in the store, so scheduled, backfill and manual runs share them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..liveness import new_owner
from ..states import DeliveryState, Severity
from .settings import AlertSettings
from .targets import Target, make_target

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger("nbflow.alerts")

# Every event, with its severity (issue 13). `alert = ...` on a task or schedule re-levels FAILURES, or silences all.
EVENTS: Mapping[str, Severity] = {
    "run_failed": Severity.CRITICAL, "task_failed": Severity.CRITICAL, "check_failed": Severity.CRITICAL,
    "breaker_opened": Severity.CRITICAL, "lease_lost": Severity.CRITICAL, "slot_abandoned": Severity.CRITICAL,
    "sla_missed": Severity.CRITICAL,
    "retry": Severity.WARNING, "slow": Severity.WARNING, "sla_at_risk": Severity.WARNING, "slot_skipped": Severity.WARNING,
    "run_succeeded": Severity.INFO, "breaker_closed": Severity.INFO, "recovered": Severity.INFO,
}
FAILURES = frozenset({"run_failed", "task_failed", "check_failed"})


def human(seconds: float | None) -> str:
    """12 s, 14 min, 2.5 h."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def clock_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S")


@dataclass(frozen=True)
class Alert:
    """One message: the project, run, task, status, error, duration, trigger, and the command that shows more."""

    event: str
    project: str
    summary: str  # the headline without severity and project: "task clean failed"
    run_id: str | None = None
    task: str | None = None
    status: str | None = None
    error: str | None = None  # "cell 3: KeyError: 'price'"
    duration: float | None = None
    trigger: str | None = None
    detail: str | None = None  # one more line: "usually 3–4 min", "next probe at 14:05:00"
    severity: Severity | None = None  # None: the event's own
    opens: str | None = None  # the failure streak this alert opens or joins
    closes: str | None = None  # the streak a success closes ("recovered" when one was open)
    at: float = field(default_factory=time.time)

    @property
    def level(self) -> Severity:
        return self.severity or EVENTS[self.event]

    @property
    def title(self) -> str:
        return f"[{self.level.value.upper()}] {self.project}: {self.summary}"

    @property
    def command(self) -> str | None:
        return f"nbflow show {self.run_id}" if self.run_id else None

    @property
    def body(self) -> str:
        lines = [f"project: {self.project}"]
        if self.run_id:
            lines.append(f"run: {self.run_id}" + (f" (trigger {self.trigger})" if self.trigger else ""))
        elif self.trigger:
            lines.append(f"trigger: {self.trigger}")
        for label, value in (("task", self.task), ("status", self.status), ("error", self.error)):
            if value:
                lines.append(f"{label}: {value}")
        if self.duration is not None:
            lines.append(f"duration: {human(self.duration)}")
        if self.detail:
            lines.append(self.detail)
        if self.command:
            lines.append(f"more: {self.command}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        """What targets receive (command: targets on stdin and as NBFLOW_ALERT_* variables)."""
        return {"severity": self.level.value, "event": self.event, "project": self.project, "title": self.title,
                "body": self.body, "summary": self.summary, "run_id": self.run_id, "task": self.task, "status": self.status,
                "error": self.error, "duration": None if self.duration is None else round(self.duration, 3),
                "trigger": self.trigger, "detail": self.detail, "command": self.command,
                "at": dt.datetime.fromtimestamp(self.at, dt.timezone.utc).isoformat(timespec="seconds")}


def recovered_from(alert: Alert, streak: Mapping[str, Any]) -> Alert:
    """The "recovered" info that closes a streak, saying how long it lasted."""
    what = alert.task and f"task {alert.task}" or "the pipeline"
    n = int(streak["failures"])
    return dataclasses.replace(
        alert, event="recovered", severity=None,
        summary=f"{what} recovered", status=alert.status or "succeeded",
        detail=f"after {n} failed run{'s' if n != 1 else ''} since "
               f"{dt.datetime.fromtimestamp(streak['opened_at']).strftime('%Y-%m-%d %H:%M')}"
               + (f" (first: run {streak['run_id']})" if streak.get("run_id") else ""))


class AlertService:
    """Records and delivers alerts off the caller's thread. One per Project; `flush` waits (bounded) for what is under
    way, `close` stops it. A delivery still pending when its process exits stays `pending` in the store, and shows
    as failed once that process is gone (see Project.alerts)."""

    WORKERS = 4

    def __init__(self, store: Store, project: str, root: str, settings: AlertSettings,
                 make: Callable[[str, str], Target] = make_target, clock: Callable[[], float] = time.time) -> None:
        self.store, self.project, self.root, self.settings = store, project, root, settings
        self.make, self.clock = make, clock
        self.owner = new_owner("alerts")
        self._intake: queue.Queue[Alert | None] = queue.Queue()
        self._jobs: queue.Queue[tuple[int, str, dict[str, Any]] | None] = queue.Queue()
        self._busy = 0  # alerts and deliveries not finished
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._closed = False
        self._threads: list[threading.Thread] = []

    def _start(self) -> None:
        if self._threads:
            return
        self._threads = [threading.Thread(target=self._intake_loop, name="nbflow-alerts", daemon=True)]
        self._threads += [threading.Thread(target=self._deliver_loop, name=f"nbflow-alerts-{i}", daemon=True)
                          for i in range(self.WORKERS)]
        for t in self._threads:
            t.start()

    def raise_(self, alert: Alert) -> None:
        """Queue an alert (never blocks, never raises)."""
        with self._cond:
            if self._closed:
                return
            self._busy += 1
            self._start()
        self._intake.put(alert)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert is recorded and every delivery has ended, at most `timeout` seconds (default:
        the settings' flush_timeout). True when nothing is left under way."""
        deadline = time.monotonic() + (self.settings.flush_timeout if timeout is None else timeout)
        with self._cond:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush (bounded), then stop: deliveries still retrying are left pending in the store."""
        done = self.flush(timeout)
        with self._cond:
            self._closed = True
        self._stop.set()
        self._intake.put(None)
        for _ in range(self.WORKERS):
            self._jobs.put(None)
        return done

    def _done(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    # the intake thread: group, rate-limit, record, hand deliveries to the workers

    def _intake_loop(self) -> None:
        while True:
            alert = self._intake.get()
            if alert is None:
                return
            try:
                if not self._stop.is_set():
                    self._take(alert)
            except Exception:  # noqa: BLE001 - an alert that cannot be recorded must not stop the next ones
                log.exception("could not record alert %s", alert.title)
            finally:
                self._done()

    def _take(self, alert: Alert) -> None:
        now = self.clock()
        targets = self.settings.targets.get(alert.level, ())
        if alert.closes:
            streak = self.store.close_streak(alert.closes)
            if streak is not None:
                alert = recovered_from(alert, streak)
                targets = self.settings.targets.get(alert.level, ())
            elif alert.event == "recovered":
                return  # nothing was failing: nothing recovered
        if alert.opens:
            failures = self.store.open_streak(alert.opens, alert.run_id, now)
            if failures > 1:
                if targets:
                    self._record(alert, "grouped", (), now, note=f"failure {failures} of an open streak: not sent again")
                return
        if not targets:
            return
        if self.store.count_routed_alerts(now - self.settings.rate_window, alert.level) >= self.settings.rate_limit:
            self._record(alert, "rate_limited", (), now, note=f"over {self.settings.rate_limit} {alert.level} alerts in "
                                                                f"{self.settings.rate_window:g} s: not sent")
            return
        made = [self.make(t, self.root) for t in targets]
        ids = self._record(alert, "routed", [m.shown for m in made], now)
        message = alert.as_json()
        for delivery_id, target in zip(ids, made):
            with self._cond:
                self._busy += 1
            self._jobs.put((delivery_id, target, message))  # type: ignore[arg-type]

    def _record(self, alert: Alert, outcome: str, targets: Any, now: float, note: str | None = None) -> list[int]:
        data = alert.as_json()
        if note:
            data["note"] = note
        _, ids = self.store.record_alert({"severity": alert.level, "event": alert.event, "key": alert.opens or alert.closes,
                                          "run_id": alert.run_id, "task": alert.task, "title": alert.title,
                                          "body": alert.body, "data": data}, outcome, list(targets), self.owner, now)
        return ids

    # delivery workers: one attempt, then retries with exponential backoff; each outcome recorded

    def _deliver_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._deliver(*job)
            except Exception:  # noqa: BLE001 - a worker goes on with the next delivery
                log.exception("alert delivery %s failed inside nbflow", job[0])
            finally:
                self._done()

    def _deliver(self, delivery_id: int, target: Any, message: dict[str, Any]) -> None:
        attempts = self.settings.retries + 1
        for n in range(1, attempts + 1):
            try:
                error = target.send(message, self.settings.timeout)
            except Exception as e:  # noqa: BLE001 - a target that raises failed this attempt
                error = f"{type(e).__name__}: {e}"
            last = error is None or n == attempts
            status = DeliveryState.SENT if error is None else DeliveryState.FAILED if last else DeliveryState.PENDING
            if self._stop.is_set() and not last:
                status = DeliveryState.PENDING
            self._update(delivery_id, status, n, error)
            if last or self._stop.wait(self.settings.retry_delay * 2 ** (n - 1)):
                return

    def _update(self, delivery_id: int, status: DeliveryState, attempts: int, error: str | None) -> None:
        try:
            self.store.update_delivery(delivery_id, status, attempts, error, self.clock())
        except Exception:  # noqa: BLE001 - the store may be closed at exit; the row then stays pending
            log.debug("could not record delivery %s", delivery_id, exc_info=True)
