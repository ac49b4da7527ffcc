"""Scheduling tables in the real SQLite store: the v1 -> v2 migration, one claim per slot, the lease."""
from __future__ import annotations

import sqlite3
import threading

from nbflow.store import Store, migrations

RUN = {"trigger": "manual", "logical_date": "2026-01-01", "parameters": {"n": 1}, "selection": {}}
ROW = {"name": "nightly", "source": "config", "cron": "0 2 * * *", "timezone": "UTC", "parameters": {"a": 1}, "only_tasks": ["x"],
       "catchup": "latest", "max_concurrent": 1, "overlap": "queue", "jobs": None}


def test_a_v1_store_migrates_in_place_to_the_current_schema(tmp_path, monkeypatch):
    path = str(tmp_path / "nbflow.db")
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        with Store(path) as s:
            assert s.schema_version == 1
    conn = sqlite3.connect(path)
    assert not conn.execute("SELECT name FROM sqlite_master WHERE name = 'schedule_slots'").fetchall()
    conn.execute("INSERT INTO runs (id, project, trigger, logical_date, parameters, selection, status, created_at) "
                 "VALUES ('r1', '/p', 'manual', '2026-01-01', '{\"n\": 1}', '{}', 'succeeded', 1.0)")  # as v1 wrote it
    conn.commit()
    conn.close()
    with Store(path, project="p") as s:  # v1 recorded the project's folder: it becomes a project named after it
        assert s.schema_version == len(migrations.MIGRATIONS)
        assert s.get_run("r1").parameters == {"n": 1} and s.get_run("r1").project == "p"
        s.sync_config_schedules([ROW], 100.0)
        assert s.schedule_rows()[0]["only_tasks"] == ["x"]
    conn = sqlite3.connect(path)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"idx_schedule_slots_project_schedule_slot", "idx_sensor_files_project_sensor_path"} <= indexes
    assert conn.execute("PRAGMA user_version").fetchone() == (len(migrations.MIGRATIONS),)


def test_a_slot_is_claimed_once_even_by_racing_threads_of_two_connections(tmp_path):
    path = str(tmp_path / "nbflow.db")
    stores = [Store(path) for _ in range(4)]
    won: list[object] = []
    barrier = threading.Barrier(4)

    def claim(store: Store, i: int) -> None:
        barrier.wait()
        row = store.claim_slot("nightly", "2026-01-02T02:00:00Z", 1.0, "2026-01-02T02:00", "schedule", "running", f"o{i}", now=1.0)
        if row is not None:
            won.append(row["owner"])

    threads = [threading.Thread(target=claim, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert len(stores[0].items("slot", "nightly")) == 1
    # a backfill may take a failed slot again, never a succeeded one
    job = stores[0].items("slot", "nightly")[0]
    stores[0].update_item("slot", job["id"], status="failed", reason="boom")
    again = stores[1].claim_slot("nightly", "2026-01-02T02:00:00Z", 1.0, "2026-01-02T02:00", "backfill", "running", "bf", now=2.0,
                                 retake=("failed",))
    assert again is not None and again["tries"] == 2 and again["trigger"] == "backfill" and again["reason"] is None
    stores[1].update_item("slot", job["id"], status="succeeded")
    assert stores[1].claim_slot("nightly", "2026-01-02T02:00:00Z", 1.0, "x", "backfill", "running", "bf", now=3.0,
                                retake=("failed",)) is None
    kinds = [e["kind"] for e in stores[0].events_since(0)]
    assert kinds.count("schedule_slot") >= 3  # claims and status changes are in the live event feed
    for s in stores:
        s.close()


def test_lease_taken_when_free_expired_or_its_holder_is_dead(tmp_path):
    with Store(str(tmp_path / "nbflow.db")) as s:
        got, holder = s.acquire_lease("a", "h", 1, now=100.0, ttl=15, holder_dead=lambda h: False)
        assert got and holder["owner"] == "a"
        got, holder = s.acquire_lease("b", "h", 2, now=110.0, ttl=15, holder_dead=lambda h: False)
        assert not got and holder["owner"] == "a"
        assert s.renew_lease("a", 112.0)
        got, _ = s.acquire_lease("b", "h", 2, now=126.0, ttl=15, holder_dead=lambda h: False)
        assert not got  # heartbeat 14 s ago: still a's
        got, _ = s.acquire_lease("b", "h", 2, now=126.0, ttl=15, holder_dead=lambda h: h["owner"] == "a")
        assert got and not s.renew_lease("a", 127.0)
        s.release_lease("a")  # not the holder: nothing happens
        assert s.lease()["owner"] == "b"
        s.release_lease("b")
        assert s.lease() is None


def test_config_sync_keeps_pause_and_history_and_drops_removed_schedules(tmp_path):
    with Store(str(tmp_path / "nbflow.db")) as s:
        s.sync_config_schedules([ROW], 100.0)
        s.set_schedule_paused("nightly", True, 110.0)
        s.claim_slot("nightly", "k", 1.0, "d", "schedule", "skipped", "o", now=1.0, reason="r")
        s.sync_config_schedules([{**ROW, "cron": "0 3 * * *"}], 120.0)
        [row] = s.schedule_rows()
        assert (row["cron"], row["paused"], row["since"]) == ("0 3 * * *", True, 100.0)
        s.set_schedule_paused("nightly", False, 130.0)
        assert s.schedule_row("nightly")["since"] == 130.0
        s.sync_config_schedules([], 140.0)
        assert s.schedule_rows() == [] and len(s.items("slot", "nightly")) == 1
