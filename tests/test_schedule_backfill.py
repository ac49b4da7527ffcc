"""Backfill with a launcher that starts no kernels (the store is real): slots, concurrency bound, resumability."""
from __future__ import annotations

import asyncio

import pytest

from nbflow.errors import ScheduleError
from nbflow.schedule.backfill import DAILY, backfill, backfill_slots
from nbflow.schedule.spec import schedule_from
from nbflow.store import Store

from .schedule_fakes import FakeClock, FakeStarter, at


def test_backfill_slots_inclusive_in_the_schedule_zone_and_never_past_now():
    spec = schedule_from("n", {"cron": "0 2 * * *", "timezone": "Europe/Paris"}, "f")
    now = at("2026-01-05T12:00")
    dates = [s.isoformat() for s in backfill_slots(spec, "2026-01-01", "2026-01-03", now)]
    assert dates == ["2026-01-01T02:00:00+01:00", "2026-01-02T02:00:00+01:00", "2026-01-03T02:00:00+01:00"]
    assert len(backfill_slots(spec, "2026-01-04", "2026-02-01", now)) == 2  # the 4th and the 5th: the rest is the future
    assert [s.day for s in backfill_slots(DAILY, "2026-01-01T00:00", "2026-01-02", now)] == [1, 2]
    with pytest.raises(ScheduleError, match="before --start"):
        backfill_slots(spec, "2026-01-03", "2026-01-01", now)
    with pytest.raises(ScheduleError) as info:
        backfill_slots(spec, "yesterday", "2026-01-01", now)
    assert info.value.field == "--start" and "YYYY-MM-DD" in str(info.value)


def test_backfill_bounded_concurrency_and_resumable(tmp_path):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        clock = FakeClock(at("2026-02-01T00:00"))
        spec = schedule_from("daily", {"cron": "0 0 * * *", "parameters": {"region": "eu"}}, "f")
        slots = backfill_slots(spec, "2026-01-01", "2026-01-06", clock.now())
        launcher = FakeStarter(store)
        launcher.fail_dates = {"2026-01-03"}
        events: list = []
        first = await backfill(store, launcher, spec, slots, clock=clock, concurrency=2, parameters={"extra": 1},
                               on_event=lambda k, d: events.append((k, dict(d))))
        assert [s.status for s in first.slots] == ["succeeded", "succeeded", "failed", "succeeded", "succeeded", "succeeded"]
        assert not first.ok and launcher.max_in_flight == 2
        assert sorted(r.logical_date for r in launcher.requests) == [f"2026-01-0{d}" for d in range(1, 7)]
        assert all(r.trigger == "backfill" and r.parameters == {"region": "eu", "extra": 1} for r in launcher.requests)
        assert events[0] == ("backfill_started", {"schedule": "daily", "total": 6, "concurrency": 2})
        assert [k for k, _ in events].count("slot_done") == 6

        again = FakeStarter(store)  # resume: only the failed slot runs again
        second = await backfill(store, again, spec, slots, clock=clock, concurrency=3)
        assert [r.logical_date for r in again.requests] == ["2026-01-03"]
        assert second.ok and second.count("already_succeeded") == 5
        row = store.slot_row("daily", "2026-01-03T00:00:00Z")
        assert row["status"] == "succeeded" and row["tries"] == 2
        store.close()

    asyncio.run(body())


def test_backfill_runs_slots_the_scheduler_skipped_and_skips_those_it_ran(tmp_path):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        clock = FakeClock(at("2026-02-01T00:00"))
        spec = schedule_from("daily", {"cron": "0 0 * * *"}, "f")
        store.claim_slot("daily", "2026-01-01T00:00:00Z", 0, "2026-01-01", "schedule", "skipped", "s", now=0, reason="missed")
        ran = store.claim_slot("daily", "2026-01-02T00:00:00Z", 0, "2026-01-02", "schedule", "running", "s", now=0)
        store.update_item("slot", ran["id"], status="succeeded", run_id="r-old")
        launcher = FakeStarter(store)
        summary = await backfill(store, launcher, spec, backfill_slots(spec, "2026-01-01", "2026-01-02", clock.now()), clock=clock)
        assert [r.logical_date for r in launcher.requests] == ["2026-01-01"]
        assert [(s.run_date, s.status) for s in summary.slots] == [("2026-01-01", "succeeded"), ("2026-01-02", "already_succeeded")]
        store.close()

    asyncio.run(body())
