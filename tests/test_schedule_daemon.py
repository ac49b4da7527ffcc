"""The scheduler daemon with a clock the test moves and a launcher that starts no kernels; the store is real."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from nbflow.errors import StandbyError
from nbflow.schedule import daemon as daemon_mod
from nbflow.schedule.daemon import Scheduler
from nbflow.schedule.spec import schedule_from, sensor_from
from nbflow.store import Store

from .schedule_fakes import FakeClock, FakeStarter, at, settle


def _scheduler(store, tmp_path, clock, launcher, schedules=(), sensors=(), **kw) -> tuple[Scheduler, list]:
    events: list = []
    s = Scheduler(store, str(tmp_path), launcher, clock=clock, specs=lambda: (list(schedules), list(sensors)),
                  on_event=lambda kind, data: events.append((kind, dict(data))), **kw)
    return s, events


def _slots(store, name):
    return [(r["run_date"], r["status"]) for r in store.items("slot", name)]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize(("policy", "expected"), [
    ("all", [("2026-01-11", "succeeded"), ("2026-01-12", "succeeded"), ("2026-01-13", "succeeded")]),
    ("latest", [("2026-01-11", "skipped"), ("2026-01-12", "skipped"), ("2026-01-13", "succeeded")]),
    ("none", [("2026-01-11", "skipped"), ("2026-01-12", "skipped"), ("2026-01-13", "skipped"), ("2026-01-14", "succeeded")]),
])
def test_catch_up_after_a_three_day_gap(tmp_path, policy, expected):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        clock = FakeClock(at("2026-01-10T12:00"))
        spec = schedule_from("daily", {"cron": "0 0 * * *", "catchup": policy}, "nbflow.toml")
        first, _ = _scheduler(store, tmp_path, clock, FakeStarter(store), [spec])
        await first.tick()
        await first.shutdown(1)
        assert store.items("slot", "daily") == []  # a new schedule starts from now: no history is run

        clock.set(at("2026-01-13T12:00"))  # three days later, three midnights missed
        launcher = FakeStarter(store)
        second, events = _scheduler(store, tmp_path, clock, launcher, [spec])
        for _ in range(4):
            await second.tick()
            await settle(second)
        if policy == "none":
            clock.set(at("2026-01-14T00:00:00.3"))  # the next slot, on time, fires
            await second.tick()
            await settle(second)
        assert _slots(store, "daily") == expected
        assert [r.logical_date for r in launcher.requests] == [d for d, s in expected if s == "succeeded"]
        assert all(r.trigger == "schedule:daily" and r.schedule == "daily" for r in launcher.requests)
        skipped = [r for r in store.items("slot", "daily") if r["status"] == "skipped"]
        assert all("missed while no scheduler ran" in r["reason"] for r in skipped)
        if policy == "all":
            assert any(k == "slot_queued" for k, _ in events)  # max_concurrent = 1: the later slots waited their turn
        await second.shutdown(1)
        store.close()

    asyncio.run(body())


def test_dst_day_in_the_daemon_fires_0230_once_at_0300(tmp_path):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        clock = FakeClock(at("2026-03-07T00:00"))
        spec = schedule_from("early", {"cron": "30 2 * * *", "timezone": "America/New_York", "catchup": "all"}, "f")
        launcher = FakeStarter(store)
        s, _ = _scheduler(store, tmp_path, clock, launcher, [spec])
        for _ in range(6 * 24):  # every 15 minutes for a day and a half
            await s.tick()
            await settle(s)
            clock.advance(15 * 60)
        assert _slots(store, "early") == [("2026-03-07T02:30", "succeeded"), ("2026-03-08T03:00", "succeeded")]
        assert [r["slot"] for r in store.items("slot", "early")] == ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z"]
        await s.shutdown(1)

    asyncio.run(body())


def test_restart_in_the_middle_of_a_slot_resumes_its_run_never_runs_it_twice(tmp_path):
    async def body():
        path = str(tmp_path / "nbflow.db")
        clock = FakeClock(at("2026-01-10T23:59:59"))
        spec = schedule_from("daily", {"cron": "0 0 * * *"}, "f")
        store_a = Store(path)
        a, _ = _scheduler(store_a, tmp_path, clock, FakeStarter(store_a, hold=True), [spec])
        await a.tick()
        clock.set(at("2026-01-11T00:00:00.2"))
        await a.tick()
        await asyncio.sleep(0.05)
        [slot] = store_a.items("slot", "daily")
        assert slot["status"] == "running" and slot["run_id"]
        run_id = slot["run_id"]
        # a dies like kill -9: nothing more of it reaches the store
        store_a.close()
        for t in a.active.values():
            t.cancel()
        await asyncio.gather(*a.active.values(), return_exceptions=True)

        store_b = Store(path)
        launcher = FakeStarter(store_b)
        b, events = _scheduler(store_b, tmp_path, clock, launcher, [spec])
        clock.advance(5)
        await b.tick()  # a's lease is still fresh: b waits as standby
        assert any(k == "standby" for k, _ in events) and not launcher.resumed
        clock.advance(daemon_mod.LEASE_TTL_SECONDS + 1)
        for _ in range(3):
            await b.tick()
            await settle(b)
            clock.advance(1)
        assert launcher.resumed == [run_id] and launcher.requests == []
        [slot] = store_b.items("slot", "daily")
        assert (slot["status"], slot["run_id"], slot["tries"]) == ("succeeded", run_id, 2)
        assert any(k == "recovered" and d["action"] == "resuming its run" for k, d in events)
        await b.shutdown(1)

    asyncio.run(body())


def test_a_claimed_slot_whose_run_never_started_is_started_once(tmp_path):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        clock = FakeClock(at("2026-01-11T00:00:01"))
        spec = schedule_from("daily", {"cron": "0 0 * * *"}, "f")
        store.sync_config_schedules([{"name": "daily", "source": "config", "cron": "0 0 * * *", "timezone": "UTC", "parameters": {},
                                      "only_tasks": [], "catchup": "latest", "max_concurrent": 1, "overlap": "queue", "jobs": None}],
                                     at("2026-01-10T00:00").timestamp())
        dead = f"scheduler:{os.uname().nodename}:{_dead_pid()}:abcdef"
        store.claim_slot("daily", "2026-01-11T00:00:00Z", at("2026-01-11T00:00").timestamp(), "2026-01-11", "schedule", "running",
                         dead, now=clock.now().timestamp())
        launcher = FakeStarter(store)
        s, events = _scheduler(store, tmp_path, clock, launcher, [spec])
        for _ in range(3):
            await s.tick()
            await settle(s)
        assert [r.logical_date for r in launcher.requests] == ["2026-01-11"]
        assert _slots(store, "daily") == [("2026-01-11", "succeeded")]
        assert any(k == "recovered" and "never started" in d["action"] for k, d in events)
        await s.shutdown(1)

    asyncio.run(body())


def test_two_schedulers_one_store_second_waits_or_refuses_and_takes_over(tmp_path):
    async def body():
        path = str(tmp_path / "nbflow.db")
        clock = FakeClock(at("2026-01-10T23:59:58"))
        spec = schedule_from("daily", {"cron": "0 0 * * *"}, "f")
        sa, sb = Store(path), Store(path)
        la, lb = FakeStarter(sa), FakeStarter(sb)
        a, _ = _scheduler(sa, tmp_path, clock, la, [spec])
        b, b_events = _scheduler(sb, tmp_path, clock, lb, [spec])
        refuse, _ = _scheduler(sb, tmp_path, clock, lb, [spec], standby=False)
        await a.tick()
        assert a.leader
        await b.tick()
        assert not b.leader and [k for k, _ in b_events].count("standby") == 1
        with pytest.raises(StandbyError) as info:
            await refuse.tick()
        assert f"pid {os.getpid()}" in str(info.value) and "--no-standby" in str(info.value)

        clock.set(at("2026-01-11T00:00:00.1"))
        await b.tick()  # the standby fires nothing
        await a.tick()
        await settle(a)
        assert len(la.requests) == 1 and lb.requests == []
        assert _slots(sa, "daily") == [("2026-01-11", "succeeded")]
        # the slot row is the guarantee: a second claim of the same slot gets nothing
        assert sb.claim_slot("daily", "2026-01-11T00:00:00Z", 0, "2026-01-11", "schedule", "running", "x", now=0) is None

        clock.advance(daemon_mod.LEASE_TTL_SECONDS + 1)  # a stops heartbeating (hung): b takes over
        await b.tick()
        assert b.leader
        await a.tick()  # a notices and stands down
        assert not a.leader
        clock.set(at("2026-01-12T00:00:00.1"))
        await b.tick()
        await a.tick()  # b's heartbeat is fresh: a stays a standby
        assert not a.leader
        await settle(b)
        assert len(la.requests) == 1 and [r.logical_date for r in lb.requests] == ["2026-01-12"]
        await b.shutdown(1)
        assert sa.lease() is None  # a clean stop gives the lease up at once

    asyncio.run(body())


@pytest.mark.parametrize("overlap", ["skip", "queue"])
def test_overlapping_slots_beyond_max_concurrent_are_skipped_or_queued_and_recorded(tmp_path, overlap):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        clock = FakeClock(at("2026-01-10T00:00:30"))
        spec = schedule_from("minutely", {"cron": "* * * * *", "overlap": overlap, "catchup": "latest"}, "f")
        launcher = FakeStarter(store, hold=True)
        s, events = _scheduler(store, tmp_path, clock, launcher, [spec])
        await s.tick()
        for minute in (1, 2):
            clock.set(at(f"2026-01-10T00:0{minute}:00.1"))
            await s.tick()
            await asyncio.sleep(0.01)
        first, second = store.items("slot", "minutely")
        assert first["status"] == "running"
        assert second["status"] == ("skipped" if overlap == "skip" else "queued")
        assert "max_concurrent = 1" in second["reason"]
        launcher.release()
        await settle(s)
        launcher.hold = False
        clock.advance(0.1)
        await s.tick()
        await settle(s)
        final = _slots(store, "minutely")
        assert final == [("2026-01-10T00:01", "succeeded"), ("2026-01-10T00:02", "skipped" if overlap == "skip" else "succeeded")]
        assert any(k == f"slot_{'skipped' if overlap == 'skip' else 'queued'}" for k, _ in events)
        await s.shutdown(1)

    asyncio.run(body())


def test_sensor_triggers_once_per_stable_file_remembered_across_restarts(tmp_path):
    async def body():
        path = str(tmp_path / "nbflow.db")
        incoming = tmp_path / "incoming"
        incoming.mkdir()
        sensor = sensor_from("drop", {"glob": "incoming/*.csv", "stable_seconds": 1.0, "parameters": {"mode": "fast"}},
                             "f", str(tmp_path))
        clock = FakeClock(at("2026-01-10T00:00"))
        store = Store(path)
        launcher = FakeStarter(store)
        s, events = _scheduler(store, tmp_path, clock, launcher, sensors=[sensor])
        f = incoming / "a.csv"
        f.write_text("x,y\n")
        (incoming / "notes.txt").write_text("not matched")
        await s.tick()
        clock.advance(0.8)
        with open(f, "a") as fh:  # still being written
            fh.write("1,2\n")
        os.utime(f, ns=(os.stat(f).st_atime_ns, os.stat(f).st_mtime_ns + 1_000_000))
        await s.tick()
        clock.advance(0.8)
        await s.tick()
        assert launcher.requests == []  # changed 0.8 s ago: not yet stable
        clock.advance(0.3)
        await s.tick()
        await settle(s)
        [req] = launcher.requests
        assert req.parameters == {"mode": "fast", "input_path": str(f)} and req.trigger == "sensor:drop"
        assert [(r["path"], r["status"]) for r in store.items("file", "drop")] == [("incoming/a.csv", "succeeded")]
        await s.shutdown(1)
        store.close()

        store = Store(path)  # restart: a.csv is remembered; b.csv is new
        launcher = FakeStarter(store)
        s, _ = _scheduler(store, tmp_path, clock, launcher, sensors=[sensor])
        (incoming / "b.csv").write_text("b\n")
        for _ in range(3):
            await s.tick()
            clock.advance(0.6)
        await settle(s)
        assert [r.parameters["input_path"] for r in launcher.requests] == [str(incoming / "b.csv")]
        assert sorted(r["path"] for r in store.items("file", "drop")) == ["incoming/a.csv", "incoming/b.csv"]
        await s.shutdown(1)

    asyncio.run(body())


def test_graceful_stop_interrupts_runs_past_the_timeout_and_the_next_scheduler_resumes_them(tmp_path):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        clock = FakeClock(at("2026-01-10T23:59:59"))
        spec = schedule_from("daily", {"cron": "0 0 * * *"}, "f")
        launcher = FakeStarter(store, hold=True)
        s, events = _scheduler(store, tmp_path, clock, launcher, [spec])
        stop = asyncio.Event()

        async def stop_after_fire():
            clock.set(at("2026-01-11T00:00:00.1"))
            while not store.items("slot", "daily", ("running",)) or not launcher.gates:
                await asyncio.sleep(0.01)
            stop.set()

        await asyncio.gather(s.serve(stop, stop_timeout=0.2), stop_after_fire())
        [slot] = store.items("slot", "daily")
        assert slot["status"] == "interrupted" and "resumes it" in slot["reason"]
        kinds = [k for k, _ in events]
        assert kinds.index("stopping") < kinds.index("run_interrupted") < kinds.index("stopped") == len(kinds) - 1
        assert events[-1][1] == {"interrupted": 1}
        assert store.lease() is None

        launcher2 = FakeStarter(store)
        s2, _ = _scheduler(store, tmp_path, clock, launcher2, [spec])
        await s2.tick()
        await settle(s2)
        assert launcher2.resumed == [slot["run_id"]] and launcher2.requests == []
        assert _slots(store, "daily") == [("2026-01-11", "succeeded")]
        await s2.shutdown(1)

    asyncio.run(body())


def test_paused_schedule_fires_nothing_and_resume_starts_from_now(tmp_path):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        clock = FakeClock(at("2026-01-10T12:00"))
        spec = schedule_from("daily", {"cron": "0 0 * * *", "catchup": "all"}, "f")
        launcher = FakeStarter(store)
        s, _ = _scheduler(store, tmp_path, clock, launcher, [spec])
        await s.tick()
        store.set_schedule_paused("daily", True, clock.now().timestamp())
        clock.set(at("2026-01-12T12:00"))
        await s.tick()
        assert store.items("slot", "daily") == []
        store.set_schedule_paused("daily", False, clock.now().timestamp())
        await s.tick()
        assert store.items("slot", "daily") == []  # the slots due while paused are not run
        clock.set(at("2026-01-13T00:00:00.1"))
        await s.tick()
        await settle(s)
        assert _slots(store, "daily") == [("2026-01-13", "succeeded")]
        await s.shutdown(1)

    asyncio.run(body())


def test_abandoned_slots_of_a_removed_schedule_are_closed_and_backfill_slots_left_to_backfill(tmp_path):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        clock = FakeClock(at("2026-01-11T00:00:01"))
        dead = f"scheduler:{os.uname().nodename}:{_dead_pid()}:abcdef"
        store.claim_slot("gone", "2026-01-11T00:00:00Z", 0, "2026-01-11", "schedule", "running", dead, now=0)
        mine = store.claim_slot("@daily", "2026-01-10T00:00:00Z", 0, "2026-01-10", "backfill", "running", "backfill:h:1:x", now=0)
        store.update_item("slot", mine["id"], status="interrupted")
        launcher = FakeStarter(store)
        s, _ = _scheduler(store, tmp_path, clock, launcher)
        await s.tick()
        await settle(s)
        assert launcher.requests == [] and launcher.resumed == []
        assert store.slot_row("gone", "2026-01-11T00:00:00Z")["status"] == "failed"
        assert "no longer exists" in store.slot_row("gone", "2026-01-11T00:00:00Z")["reason"]
        assert store.slot_row("@daily", "2026-01-10T00:00:00Z")["status"] == "interrupted"
        await s.shutdown(1)

    asyncio.run(body())


def test_sensor_files_beyond_max_concurrent_wait_in_the_queue_never_dropped(tmp_path):
    async def body():
        store = Store(str(tmp_path / "nbflow.db"))
        (tmp_path / "in").mkdir()
        sensor = sensor_from("drop", {"glob": "in/*.csv", "stable_seconds": 0}, "f", str(tmp_path))
        clock = FakeClock(at("2026-01-10T00:00"))
        launcher = FakeStarter(store, hold=True)
        s, events = _scheduler(store, tmp_path, clock, launcher, sensors=[sensor])
        for name in ("a.csv", "b.csv", "c.csv"):
            (tmp_path / "in" / name).write_text(name)
        await s.tick()
        await asyncio.sleep(0.01)
        assert [(r["path"], r["status"]) for r in store.items("file", "drop")] == [
            ("in/a.csv", "running"), ("in/b.csv", "queued"), ("in/c.csv", "queued")]
        launcher.hold = False
        launcher.release()
        for _ in range(3):
            await settle(s)
            await s.tick()
        await settle(s)
        assert [r["status"] for r in store.items("file", "drop")] == ["succeeded"] * 3
        assert [os.path.basename(r.parameters["input_path"]) for r in launcher.requests] == ["a.csv", "b.csv", "c.csv"]
        await s.shutdown(1)

    asyncio.run(body())
