"""Backfill: one run per slot of a schedule (or per day) between two dates, a few at a time, resumable.

Slots go through the same UNIQUE(schedule, slot) rows as the scheduler's, so a slot that already succeeded
(by the scheduler or an earlier backfill) is skipped, and a failed, skipped or interrupted one runs again.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ScheduleError
from ..liveness import new_owner
from ..states import RunState, WorkState
from . import cron
from .clock import Clock, SystemClock
from .spec import ScheduleSpec
from .work import RunRequest, RunStarter, abandoned, run_item

if TYPE_CHECKING:
    from ..store import Store

DAILY = ScheduleSpec(name="@daily", cron="0 0 * * *", timezone="UTC", source="backfill")
RETAKE = (WorkState.FAILED, WorkState.SKIPPED, WorkState.INTERRUPTED)
MAX_SLOTS = 10_000
CONFLICT_RETRY_SECONDS = 2.0  # a slot whose data another run holds tries again this often
EventSink = Callable[[str, Mapping[str, Any]], None]


@dataclass
class SlotResult:
    run_date: str
    slot: str
    status: str  # succeeded, failed, interrupted, or already_<status> when an earlier run had it
    run_id: str | None = None
    reason: str | None = None


@dataclass
class BackfillSummary:
    schedule: str
    slots: list[SlotResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status in (WorkState.SUCCEEDED, "already_succeeded") for s in self.slots)

    def count(self, status: str) -> int:
        return sum(1 for s in self.slots if s.status == status)


def parse_when(text: str, tz: dt.tzinfo, *, end: bool, option: str) -> dt.datetime:
    """A --start/--end value: a date (the whole day, for --end) or a date and time, in the schedule's time zone."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            at = dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time())
            return at.replace(tzinfo=tz) - (dt.timedelta(microseconds=1) if end else dt.timedelta())
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError("nbflow backfill", option, f"'{text}' is not a date", "write YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def backfill_slots(spec: ScheduleSpec, start: str, end: str, now: dt.datetime) -> list[dt.datetime]:
    """The schedule's slots from start to end (inclusive), never past now."""
    tz = spec.tz
    first, last = parse_when(start, tz, end=False, option="--start"), parse_when(end, tz, end=True, option="--end")
    if last < first:
        raise ScheduleError("nbflow backfill", "--end", f"{end} is before --start {start}", "give an end on or after the start")
    found = cron.slots(spec.cron, tz, first - dt.timedelta(microseconds=1), min(last, now), limit=MAX_SLOTS + 1)
    if len(found) > MAX_SLOTS:
        raise ScheduleError("nbflow backfill", "--start", f"the range holds more than {MAX_SLOTS} slots of '{spec.cron}'",
                            "backfill a shorter range at a time")
    return found


async def backfill(store: Store, starter: RunStarter, spec: ScheduleSpec, slots: list[dt.datetime], *, clock: Clock | None = None,
                   concurrency: int = 2, parameters: Mapping[str, Any] | None = None, only: tuple[str, ...] = (),
                   jobs: int | None = None, on_event: EventSink | None = None) -> BackfillSummary:
    """Run each slot once, at most `concurrency` at a time; Ctrl-C leaves the slots running then as interrupted."""
    clock = clock or SystemClock()
    emit = on_event or (lambda kind, data: None)
    owner = new_owner("backfill")
    gate = asyncio.Semaphore(max(1, concurrency))
    params = {**spec.parameters, **(parameters or {})}
    request_only = only or spec.only
    summary = BackfillSummary(spec.name)
    emit("backfill_started", {"schedule": spec.name, "total": len(slots), "concurrency": concurrency})

    def claim(slot: dt.datetime) -> dict[str, Any] | SlotResult:
        key, run_date = cron.slot_key(slot), cron.run_date(slot, cron.has_seconds(spec.cron))
        for _ in range(2):
            row = store.claim_slot(spec.name, key, slot.timestamp(), run_date, "backfill", WorkState.RUNNING, owner,
                                   now=clock.now().timestamp(), retake=RETAKE)
            if row is not None:
                return row
            existing = store.slot_row(spec.name, key)
            assert existing is not None
            lease = store.lease()
            if existing["status"] != WorkState.RUNNING or not abandoned(existing, owner, lease["owner"] if lease else None):
                return SlotResult(run_date, key, f"already_{existing['status']}", existing["run_id"], existing["reason"])
            if existing["run_id"] and starter.liveness(existing["run_id"]) == RunState.RUNNING:
                return SlotResult(run_date, key, "already_running", existing["run_id"])
            store.update_item("slot", existing["id"], status=WorkState.INTERRUPTED, reason="its runner is gone")
        return SlotResult(run_date, key, "already_running")

    async def one(slot: dt.datetime) -> SlotResult:
        async with gate:
            claimed = claim(slot)
            if isinstance(claimed, SlotResult):
                emit("slot_done", {"schedule": spec.name, **claimed.__dict__})
                return claimed
            run_date = claimed["run_date"]
            result = SlotResult(run_date, claimed["slot"], "running")

            def started(run_id: str) -> None:
                result.run_id = run_id
                emit("slot_started", {"schedule": spec.name, "run_date": run_date, "run_id": run_id})

            request = RunRequest(parameters=params, only=request_only, trigger="backfill", logical_date=run_date,
                                 schedule=spec.name, jobs=jobs)
            item_id = int(claimed["id"])
            outcome = await run_item(store, starter, "slot", item_id, request, clock, started=started)
            while outcome.status == WorkState.QUEUED:  # another run holds its data: wait for it, then take it again
                emit("slot_waiting", {"schedule": spec.name, "run_date": run_date, "reason": outcome.reason})
                await asyncio.sleep(CONFLICT_RETRY_SECONDS)
                if store.take_item("slot", item_id, owner, now=clock.now().timestamp(), from_states=(WorkState.QUEUED,)):
                    outcome = await run_item(store, starter, "slot", item_id, request, clock, started=started)
            result.status, result.reason = str(outcome.status), outcome.reason
            emit("slot_done", {"schedule": spec.name, **result.__dict__})
            return result

    summary.slots = list(await asyncio.gather(*(one(s) for s in slots)))
    emit("backfill_finished", {"schedule": spec.name, "ok": summary.ok})
    return summary
