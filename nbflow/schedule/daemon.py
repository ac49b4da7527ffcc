"""The scheduler daemon: holds the store's lease, fires due cron slots, senses new files, runs them.

One `tick()` does one pass and says how long to sleep; `serve()` loops over ticks in real time; tests call
`tick()` with a fake clock. Every decision is claimed in the store before a run starts (UNIQUE slot rows),
so a restart or a second scheduler never runs a slot or a file twice.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import signal
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import paths
from ..errors import LeaseLostError, NbflowError, StandbyError
from ..liveness import HOST, LEASE_TTL_SECONDS, Holder, gone, new_owner
from ..states import RunState, WorkState
from . import cron, sensor
from .clock import Clock, SystemClock
from .spec import ScheduleSpec, SensorSpec, schedule_from_row, schedule_row
from .work import RunRequest, RunStarter, abandoned, run_item

if TYPE_CHECKING:
    from ..store import Store

HEARTBEAT_SECONDS = 2.0  # lease heartbeat
STANDBY_POLL_SECONDS = 2.0
POLL_SECONDS = 0.25  # sensors and queued work
RECOVER_SECONDS = 5.0  # look for abandoned slots and files this often
RELOAD_SECONDS = 5.0  # re-read nbflow.toml this often
MISFIRE_GRACE_SECONDS = 60.0  # a slot older than this when seen is "missed" (catch-up policy applies)
CONFLICT_RETRY_SECONDS = 2.0  # a slot whose data another run holds tries again this often

EventSink = Callable[[str, Mapping[str, Any]], None]
SpecSource = Callable[[], tuple[list[ScheduleSpec], list[SensorSpec]]]
UTC = dt.timezone.utc


def _ignore(kind: str, data: Mapping[str, Any]) -> None:
    """The event sink when the caller gives none."""


def catchup_plan(due: list[dt.datetime], policy: str, now: dt.datetime, grace: float) -> list[tuple[dt.datetime, str | None]]:
    """For due slots (oldest first): (slot, None) to fire it, or (slot, reason) to record it skipped.

    all: every due slot fires. latest: only the newest fires. none: only slots within `grace` seconds of now fire.
    """
    if policy == "all":
        return [(s, None) for s in due]
    if policy == "latest":
        return [(s, None if i == len(due) - 1 else "missed while no scheduler ran; catchup = \"latest\" runs only the newest")
                for i, s in enumerate(due)]
    return [(s, None if (now - s).total_seconds() <= grace else "missed while no scheduler ran; catchup = \"none\"") for s in due]


class Scheduler:
    """Fires schedules and sensors of one project store. Not thread-safe; runs in one event loop."""

    def __init__(self, store: Store, root: str, starter: RunStarter, *, clock: Clock | None = None,
                 specs: SpecSource | None = None, on_event: EventSink | None = None, standby: bool = True,
                 grace_seconds: float = MISFIRE_GRACE_SECONDS) -> None:
        self.store, self.root, self.starter = store, root, starter
        self.clock = clock or SystemClock()
        self.specs = specs or (lambda: ([], []))
        self.emit = on_event or _ignore
        self.standby, self.grace = standby, grace_seconds
        self.owner = new_owner("scheduler")
        self.leader = False
        self.sensors: list[SensorSpec] = []
        self.stability = sensor.Stability()
        self.active: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.wake = asyncio.Event()
        self.stopping = False
        self._beat = self._loaded = self._recovered = -math.inf
        self._conflicted: dict[tuple[str, int], float] = {}  # queued work items whose run met a conflict, and when
        self._said_standby = False

    # the lease

    @staticmethod
    def _holder_dead(holder: Mapping[str, Any]) -> bool:
        """Its process is gone on this host (the store checks the heartbeat's age by this scheduler's clock)."""
        return gone(Holder(holder["host"], holder["pid"]), ttl=math.inf)

    def _take_lease(self, now: float) -> bool:
        got, holder = self.store.acquire_lease(self.owner, HOST, os.getpid(), now, LEASE_TTL_SECONDS, self._holder_dead)
        if got:
            self.leader, self._beat, self._recovered, self._loaded = True, now, -math.inf, -math.inf
            self.emit("leader", {"owner": self.owner})
            return True
        message = (f"another scheduler holds the store's lease: pid {holder['pid']} on {holder['host']}, last heartbeat "
                   f"{max(0.0, now - holder['heartbeat_at']):.1f} s ago")
        if not self.standby:
            raise StandbyError(f"{message} ({self.store.path}). Fix: stop that scheduler first, or start this one without "
                               f"--no-standby to wait as a standby and take over when it stops")
        if not self._said_standby:
            self.emit("standby", {"holder": holder, "message": message})
            self._said_standby = True
        return False

    def _lost(self) -> None:
        self.leader, self._said_standby = False, False
        self.emit("lease_lost", {"owner": self.owner, "running": len(self.active)})

    # one pass

    async def tick(self) -> float:
        """Do everything that is due now; return the seconds until the next pass is useful."""
        now = self.clock.now()
        ts = now.timestamp()
        if not self.leader:
            if self.stopping or not self._take_lease(ts):
                return STANDBY_POLL_SECONDS
        elif ts - self._beat >= HEARTBEAT_SECONDS:
            if not self.store.renew_lease(self.owner, ts):
                self._lost()
                return STANDBY_POLL_SECONDS
            self._beat = ts
        if self.stopping:
            return POLL_SECONDS
        try:
            if ts - self._loaded >= RELOAD_SECONDS:
                self._reload(ts)
            if ts - self._recovered >= RECOVER_SECONDS:
                self._recovered = ts
                self._recover(ts)
            rows = self.store.schedule_rows()
            for row in rows:
                if not row["paused"]:
                    self._fire(row, now)
            self._start_queued(rows, ts)
            for s in self.sensors:
                self._sense(s, now)
        except LeaseLostError:
            self._lost()
            return STANDBY_POLL_SECONDS
        return self._next_wake(rows, now)

    def _reload(self, ts: float) -> None:
        """Sync nbflow.toml's schedules into the store and pick up its sensors; a broken file keeps the last good ones."""
        self._loaded = ts
        try:
            schedules, sensors = self.specs()
        except NbflowError as e:
            self.emit("error", {"message": f"configuration not reloaded: {e}"})
            return
        self.store.sync_config_schedules([schedule_row(s) for s in schedules], ts)
        self.sensors = sensors

    def _next_wake(self, rows: list[dict[str, Any]], now: dt.datetime) -> float:
        delays = [HEARTBEAT_SECONDS]
        if self.sensors:
            delays.append(POLL_SECONDS)
        for row in rows:
            if not row["paused"]:
                spec = schedule_from_row(row)
                nxt = cron.next_fires(spec.cron, spec.tz, now)[0]
                delays.append((nxt - now).total_seconds())
        return max(0.005, min(delays))

    # schedules

    def _fire(self, row: Mapping[str, Any], now: dt.datetime) -> None:
        spec = schedule_from_row(row)
        last = self.store.last_slot_ts(spec.name)
        after = dt.datetime.fromtimestamp(max(row["since"], last if last is not None else -math.inf), UTC)
        due = cron.slots(spec.cron, spec.tz, after, now)
        seconds = cron.has_seconds(spec.cron)
        for slot, skip in catchup_plan(due, spec.catchup, now, self.grace):
            status, reason = (WorkState.SKIPPED, skip) if skip else self._capacity("slot", spec.name, spec.max_concurrent, spec.overlap)
            claimed = self.store.claim_slot(spec.name, cron.slot_key(slot), slot.timestamp(), cron.run_date(slot, seconds), "schedule",
                                            status, self.owner, now=now.timestamp(), reason=reason, lease_owner=self.owner)
            if claimed is None:
                continue
            late = (now - slot).total_seconds()
            self.emit(f"slot_{status}" if status != WorkState.RUNNING else "slot_fired",
                      {"schedule": spec.name, "slot": claimed["slot"], "run_date": claimed["run_date"], "reason": reason, "late": late})
            if status == WorkState.RUNNING:
                self._launch("slot", claimed, self._slot_request(spec, claimed))

    def _capacity(self, kind: str, key: str, limit: int, overlap: str) -> tuple[WorkState, str | None]:
        """running if a run may start now; else queued or skipped by the overlap policy, with the reason."""
        running = self.store.count_items(kind, key, (WorkState.RUNNING,))
        waiting = self.store.count_items(kind, key, (WorkState.QUEUED,))
        if running < limit and not waiting:
            return WorkState.RUNNING, None
        reason = f"{running} run(s) already active (max_concurrent = {limit})" + (f", {waiting} queued" if waiting else "")
        return (WorkState.QUEUED, reason) if overlap == "queue" else (WorkState.SKIPPED, f"overlap = \"skip\": {reason}")

    def _slot_request(self, spec: ScheduleSpec, row: Mapping[str, Any]) -> RunRequest:
        return RunRequest(parameters=dict(spec.parameters), only=spec.only, trigger=spec.trigger, logical_date=row["run_date"],
                          schedule=spec.name, jobs=spec.jobs)

    def _file_request(self, spec: SensorSpec, row: Mapping[str, Any]) -> RunRequest:
        full = paths.location(row["path"], self.root)
        return RunRequest(parameters={**spec.parameters, spec.parameter: full}, only=spec.only, trigger=spec.trigger,
                          jobs=spec.jobs)

    def _request(self, kind: str, row: Mapping[str, Any]) -> RunRequest | None:
        """The run a stored slot or file asks for, from its schedule's or sensor's current definition."""
        if kind == "slot":
            found = self.store.schedule_row(row["schedule"])
            return None if found is None else self._slot_request(schedule_from_row(found), row)
        spec = next((s for s in self.sensors if s.name == row["sensor"]), None)
        return None if spec is None else self._file_request(spec, row)

    def _start_queued(self, rows: list[dict[str, Any]], ts: float) -> None:
        limits = [("slot", r["name"], r["max_concurrent"]) for r in rows if not r["paused"]]
        limits += [("file", s.name, s.max_concurrent) for s in self.sensors]
        for kind, key, limit in limits:
            free = limit - self.store.count_items(kind, key, (WorkState.RUNNING,))
            for row in self.store.items(kind, key, (WorkState.QUEUED,), limit=max(free, 0)):
                if ts - self._conflicted.get((kind, row["id"]), -math.inf) < CONFLICT_RETRY_SECONDS:
                    continue  # its data is held by another run: look again a little later
                if self.store.take_item(kind, row["id"], self.owner, now=ts, from_states=(WorkState.QUEUED,), lease_owner=self.owner):
                    self._start(kind, row, "started from the queue")

    def _start(self, kind: str, row: Mapping[str, Any], why: str) -> None:
        request = self._request(kind, row)
        if request is None:
            what = "schedule" if kind == "slot" else "sensor"
            self.store.update_item(kind, row["id"], status=WorkState.FAILED, ended_at=self.clock.now().timestamp(),
                                   reason=f"its {what} no longer exists")
            return
        self.emit("dequeued", {"kind": kind, **_label(kind, row), "reason": why})
        self._launch(kind, row, request)

    # sensors

    def _sense(self, spec: SensorSpec, now: dt.datetime) -> None:
        files = sensor.scan(self.root, spec.glob)
        known = self.store.sensor_paths(spec.name)
        self.stability.prune(spec.name, {f[0] for f in files})
        for stat in files:
            path, size, mtime_ns = stat
            if path in known or not self.stability.observe(spec.name, stat, now, spec.stable_seconds):
                continue
            status, reason = self._capacity("file", spec.name, spec.max_concurrent, "queue")
            claimed = self.store.claim_file(spec.name, path, size, mtime_ns / 1e9, spec.trigger, status, self.owner,
                                            now=now.timestamp(), lease_owner=self.owner)
            self.stability.forget(spec.name, path)
            if claimed is None:
                continue
            late = now.timestamp() - mtime_ns / 1e9
            self.emit("file_sensed" if status == WorkState.RUNNING else "file_queued",
                      {"sensor": spec.name, "path": path, "reason": reason, "late": late})
            if status == WorkState.RUNNING:
                self._launch("file", claimed, self._file_request(spec, claimed))

    # running

    def _launch(self, kind: str, row: Mapping[str, Any], request: RunRequest, resume: str | None = None) -> None:
        key = (kind, int(row["id"]))
        self.active[key] = asyncio.create_task(self._run_item(kind, dict(row), request, resume))

    async def _run_item(self, kind: str, row: dict[str, Any], request: RunRequest, resume: str | None) -> None:
        item_id = int(row["id"])
        label = _label(kind, row)

        def started(run_id: str) -> None:
            self.emit("run_started", {**label, "run_id": run_id, "trigger": request.trigger})

        try:
            if resume:
                self.emit("run_resumed", {**label, "run_id": resume})
            try:
                outcome = await run_item(self.store, self.starter, kind, item_id, request, self.clock, resume=resume, started=started)
            except asyncio.CancelledError:
                self.emit("run_interrupted", label)
                raise
            if outcome.status == WorkState.QUEUED:
                self._conflicted[(kind, item_id)] = self.clock.now().timestamp()
                self.emit("run_waiting", {**label, "reason": outcome.reason})
                return
            self.emit("run_finished", {**label, "run_id": outcome.run_id, "status": outcome.status, "reason": outcome.reason})
        finally:
            self.active.pop((kind, item_id), None)
            self.wake.set()

    def _recover(self, ts: float) -> None:
        """Take over slots and files whose scheduler is gone: finish their record, resume their run, or start it."""
        holder = self.owner if self.leader else None
        for kind in ("slot", "file"):
            for row in self.store.items(kind, statuses=(WorkState.RUNNING, WorkState.INTERRUPTED)):
                if (kind, row["id"]) in self.active or (kind == "slot" and row["trigger"] != "schedule"):
                    continue  # a backfill's slots are the backfill's: running it again retakes them
                if row["status"] == WorkState.RUNNING and not abandoned(row, self.owner, holder):
                    continue
                run_id = row["run_id"] or self._find_run(kind, row)
                state = self.starter.liveness(run_id) if run_id else None
                if state == RunState.RUNNING:
                    continue  # its runner is still alive somewhere: look again later
                label = _label(kind, row)
                if state in (RunState.SUCCEEDED, RunState.FAILED):
                    self.store.update_item(kind, row["id"], status=WorkState(str(state)), run_id=run_id, ended_at=ts,
                                           reason="finished while no scheduler watched it")
                    self.emit("recovered", {**label, "run_id": run_id, "action": f"recorded as {state}"})
                    continue
                request = self._request(kind, row)
                if request is None:  # its schedule or sensor is gone: close the record instead of looking again forever
                    self.store.update_item(kind, row["id"], status=WorkState.FAILED, ended_at=ts,
                                           reason="abandoned by a stopped runner, and its schedule or sensor no longer exists")
                    continue
                if not self.store.take_item(kind, row["id"], self.owner, now=ts, from_states=(WorkState(row["status"]),),
                                            lease_owner=self.owner):
                    continue
                if run_id:
                    self.store.update_item(kind, row["id"], run_id=run_id)
                    self.emit("recovered", {**label, "run_id": run_id, "action": "resuming its run"})
                    self._launch(kind, row, request, resume=run_id)
                else:
                    self.emit("recovered", {**label, "action": "its run never started: starting it"})
                    self._launch(kind, row, request)

    def _find_run(self, kind: str, row: Mapping[str, Any]) -> str | None:
        if kind == "slot":
            found = self.store.schedule_row(row["schedule"])
            return self.store.find_run(f"schedule:{row['schedule']}", row["claimed_at"], logical_date=row["run_date"]) if found else None
        spec = next((s for s in self.sensors if s.name == row["sensor"]), None)
        if spec is None:
            return None
        return self.store.find_run(spec.trigger, row["claimed_at"],
                                   parameter=(spec.parameter, paths.location(row["path"], self.root)))

    # the loop

    async def serve(self, stop: asyncio.Event, cancel: asyncio.Event | None = None, stop_timeout: float = 60.0) -> None:
        """Tick until `stop` is set; then let running runs finish for up to `stop_timeout` s (or until `cancel`),
        cancel the rest (recorded as interrupted, resumed by the next scheduler) and give the lease up."""
        self.emit("scheduler_started", {"owner": self.owner, "store": self.store.path, "pid": os.getpid()})
        try:
            while not stop.is_set():
                try:
                    delay = await self.tick()
                except StandbyError:
                    raise
                except Exception as e:  # noqa: BLE001 - a daemon reports and goes on (the store may be busy a moment)
                    self.emit("error", {"message": f"{type(e).__name__}: {e}"})
                    delay = STANDBY_POLL_SECONDS
                self.wake.clear()
                await _first(delay, stop, self.wake)
        finally:
            await self.shutdown(stop_timeout, cancel)

    async def shutdown(self, timeout: float, cancel: asyncio.Event | None = None) -> None:
        self.stopping = True
        running = list(self.active.values())
        if running:
            self.emit("stopping", {"running": len(running), "timeout": timeout})
            waiter = asyncio.ensure_future(asyncio.wait(running, timeout=timeout))
            await _first(timeout, cancel or asyncio.Event(), waiter)
            waiter.cancel()
        left = [t for t in self.active.values() if not t.done()]
        for t in left:
            t.cancel()
        if left:
            await asyncio.gather(*left, return_exceptions=True)
        if self.leader:
            self.store.release_lease(self.owner)
            self.leader = False
        self.emit("stopped", {"interrupted": len(left)})


def _label(kind: str, row: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "slot":
        return {"schedule": row["schedule"], "slot": row["slot"], "run_date": row["run_date"]}
    return {"sensor": row["sensor"], "path": row["path"]}


async def _first(timeout: float, *events: asyncio.Event | asyncio.Future[Any]) -> None:
    """Wait until any event is set (or future done), at most `timeout` seconds."""
    waits = [asyncio.ensure_future(e.wait()) if isinstance(e, asyncio.Event) else e for e in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w, e in zip(waits, events):
            if isinstance(e, asyncio.Event):
                w.cancel()


def run_forever(scheduler: Scheduler, stop_timeout: float = 60.0) -> None:
    """Serve until SIGTERM or SIGINT; a second signal cancels the runs still going instead of waiting."""

    async def main() -> None:
        stop, cancel = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            (cancel if stop.is_set() else stop).set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        await scheduler.serve(stop, cancel, stop_timeout)

    asyncio.run(main())
