"""The SQLite store, on real files: schema and migrations, the API round trip, lineage, and concurrency."""
from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import sqlite3
import threading
import time
import traceback
from typing import Any

import pytest

from nbflow.errors import ConflictError, NotFoundError, StoreError, StoreVersionError
from nbflow.store import Store, migrations
from nbflow.store.db import wal_bug_warning

RUN: dict[str, Any] = {
    "trigger": "manual", "logical_date": "2026-01-02", "parameters": {"n": 1}, "selection": {},
}


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "nbflow.db"))
    yield s
    s.close()


def _sql(path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _count(path, table: str) -> int:
    return _sql(path, f"SELECT count(*) FROM {table}")[0][0]


# schema and migrations


def test_fresh_store_creates_folder_schema_and_version(tmp_path):
    path = tmp_path / "deep" / ".nbflow" / "nbflow.db"
    with Store(str(path)) as s:
        assert s.schema_version == len(migrations.MIGRATIONS)
        assert s.path == str(path)
    tables = {r[0] for r in _sql(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "run_tasks", "attempts", "events", "datasets", "dataset_versions", "lineage"} <= tables
    assert {"schedules", "schedule_slots", "sensor_files", "scheduler_lease", "projects", "run_claims"} <= tables
    assert {"alerts", "alert_deliveries", "alert_streaks", "breakers"} <= tables
    assert _sql(path, "PRAGMA user_version") == [(len(migrations.MIGRATIONS),)]
    assert _sql(path, "PRAGMA journal_mode") == [("wal",)]


def test_reopen_keeps_data(tmp_path):
    path = str(tmp_path / "nbflow.db")
    with Store(path) as s:
        s.create_run("r1", tasks=["a"], **RUN)
    with Store(path) as s:
        assert s.get_run("r1").parameters == {"n": 1}
        assert [t.task for t in s.run_tasks("r1")] == ["a"]
        assert s.schema_version == len(migrations.MIGRATIONS)


def _fake_next(db, ctx) -> None:
    migrations.create_table(db, "widgets", {"name": str, "cron": str}, pk="name")
    migrations.create_index(db, "widgets", ["cron"])


def _failing_next(db, ctx) -> None:
    migrations.create_table(db, "half_done", {"x": int})
    raise RuntimeError("migration bug")


def test_pending_migration_runs_once_and_keeps_data(tmp_path, monkeypatch):
    path = str(tmp_path / "nbflow.db")
    with Store(path) as s:
        s.create_run("r1", tasks=["a"], **RUN)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, _fake_next])
    latest = len(migrations.MIGRATIONS)
    with Store(path) as s:
        assert s.schema_version == latest
        assert s.count_runs() == 1
    assert _sql(path, "PRAGMA user_version") == [(latest,)]
    assert _sql(path, "SELECT name FROM sqlite_master WHERE name = 'widgets'") == [("widgets",)]
    with Store(path) as s:  # nothing pending now: opening again is a no-op
        assert s.schema_version == latest


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    path = str(tmp_path / "nbflow.db")
    Store(path).close()
    known = len(migrations.MIGRATIONS)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, _failing_next])
    known = len(migrations.MIGRATIONS) - 1
    with pytest.raises(RuntimeError, match="migration bug"):
        Store(path)
    assert _sql(path, "PRAGMA user_version") == [(known,)]
    assert _sql(path, "SELECT name FROM sqlite_master WHERE name = 'half_done'") == []


def test_newer_schema_is_refused_with_a_fix(tmp_path):
    path = tmp_path / "nbflow.db"
    Store(str(path)).close()
    newer = len(migrations.MIGRATIONS) + 4
    _sql(path, f"PRAGMA user_version = {newer}")
    with pytest.raises(StoreVersionError) as info:
        Store(str(path))
    msg = str(info.value)
    assert str(path) in msg and "newer nbflow" in msg and f"schema {newer}" in msg and f"knows {len(migrations.MIGRATIONS)}" in msg
    assert "pip install -U nbflow" in msg and "nbflow.toml" in msg
    assert isinstance(pickle.loads(pickle.dumps(info.value)), StoreVersionError)


def test_garbage_file_is_a_store_error(tmp_path):
    path = tmp_path / "nbflow.db"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 100)
    with pytest.raises(StoreError) as info:
        Store(str(path))
    assert str(path) in str(info.value) and "Fix:" in str(info.value)


def test_foreign_sqlite_database_is_not_taken_over(tmp_path):
    path = tmp_path / "other.db"
    _sql(path, "CREATE TABLE users (id INTEGER)")
    with pytest.raises(StoreError, match="not an nbflow store"):
        Store(str(path))
    assert _sql(path, "SELECT name FROM sqlite_master WHERE name = 'runs'") == []


def test_wal_bug_warning_by_version():
    assert "WAL-reset bug" in (wal_bug_warning("3.40.1") or "")
    assert wal_bug_warning("3.51.2") and wal_bug_warning("3.7.0")
    assert wal_bug_warning("3.51.3") is None and wal_bug_warning("3.54.1") is None
    assert Store.sqlite_version == sqlite3.sqlite_version
    assert Store.wal_bug_warning() == wal_bug_warning(sqlite3.sqlite_version)


# runs, tasks, attempts


def test_run_task_attempt_round_trip(store):
    store.create_run("r1", tasks=["ingest", "clean"], schedule="nightly", **RUN)
    run = store.get_run("r1")
    assert run.status == "running" and run.pid == os.getpid() and run.schedule == "nightly"
    assert run.parameters == {"n": 1} and run.selection == {} and run.resumed_from is None
    assert [(t.task, t.status, t.attempts) for t in store.run_tasks("r1")] == [
        ("ingest", "pending", 0), ("clean", "pending", 0)]

    attempt = store.start_attempt("r1", "ingest", 1, "key1", "art/r1/ingest.ipynb", pid=4242)
    task = store.run_tasks("r1")[0]
    assert (task.status, task.attempts, task.cache_key) == ("running", 1, "key1")
    assert task.started_at is not None
    store.finish_attempt(attempt, "failed", error_kind="exception", error="ZeroDivisionError", error_cell=3, log="x")
    got = store.get_attempt(attempt)
    assert (got.status, got.error_kind, got.error_cell, got.pid, got.log) == (
        "failed", "exception", 3, 4242, "x")
    store.set_task_state("r1", "ingest", "failed", error="ZeroDivisionError", error_cell=3, ended_at=time.time())
    assert store.run_tasks("r1")[0].error_cell == 3

    store.heartbeat("r1")
    store.finish_run("r1", "failed")
    run = store.get_run("r1")
    assert run.status == "failed" and run.ended_at >= run.started_at
    assert [a.id for a in store.attempts("r1")] == [attempt] == [a.id for a in store.attempts("r1", "ingest")]
    assert store.attempts("r1", "clean") == []

    with pytest.raises(ConflictError):
        store.create_run("r1", tasks=[], **RUN)
    with pytest.raises(NotFoundError, match="no task 'nope'"):
        store.set_task_state("r1", "nope", "running")
    with pytest.raises(ValueError):
        store.set_task_state("r1", "ingest", "exploded")
    with pytest.raises(TypeError):
        store.set_task_state("r1", "ingest", "running", colour="red")
    with pytest.raises(NotFoundError):
        store.get_attempt(999)
    with pytest.raises(NotFoundError):
        store.finish_attempt(999, "failed")
    with pytest.raises(NotFoundError):
        store.finish_run("missing", "failed")


def test_list_and_count_runs(store):
    for i in range(5):
        store.create_run(f"r{i}", tasks=[], **RUN)
    store.finish_run("r3", "succeeded")
    assert [r.id for r in store.list_runs()] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.id for r in store.list_runs(limit=2, offset=1)] == ["r3", "r2"]
    assert [r.id for r in store.list_runs(status="succeeded")] == ["r3"]
    assert store.list_runs()[0].parameters == {"n": 1}
    assert store.count_runs() == 5 and store.count_runs("running") == 4
    assert store.latest_run_id() == "r4"


def test_empty_store_answers(store):
    assert store.latest_run_id() is None and store.count_runs() == 0 and store.list_runs() == []
    assert store.last_event_id() == 0 and store.events_since() == []
    assert store.lineage("nothing.csv") is None and store.dataset_versions("nothing.csv") == []


def test_get_run_by_prefix_and_not_found(store):
    store.create_run("20260102-aaaa", tasks=[], **RUN)
    store.create_run("20260102-abbb", tasks=[], **RUN)
    assert store.get_run("20260102-aa").id == "20260102-aaaa"
    assert store.get_run("20260102-abbb").id == "20260102-abbb"
    with pytest.raises(NotFoundError, match="several runs"):
        store.get_run("20260102-a")
    with pytest.raises(NotFoundError) as info:
        store.get_run("zzz")
    assert "zzz" in str(info.value) and "nbflow runs" in str(info.value)
    with pytest.raises(NotFoundError):
        store.get_run("")


def test_reset_tasks_for_resume(store):
    store.create_run("r1", tasks=["a", "b"], **RUN)
    attempt = store.start_attempt("r1", "b", 1, "k", "art")
    store.finish_attempt(attempt, "failed", error="boom")
    store.set_task_state("r1", "b", "failed", error="boom", error_cell=2, ended_at=time.time())
    store.finish_run("r1", "failed")
    store.reset_tasks("r1", ["b", "c"])
    run = store.get_run("r1")
    assert run.status == "running" and run.ended_at is None and run.pid == os.getpid()
    tasks = {t.task: t for t in store.run_tasks("r1")}
    assert tasks["b"].status == "pending" and tasks["b"].error is None and tasks["b"].error_cell is None
    assert tasks["b"].attempts == 1  # the next attempt is number 2
    assert tasks["c"].status == "pending" and tasks["a"].status == "pending"
    assert store.events_since()[-1]["kind"] == "run_resumed"


def test_a_succeeded_attempt_marks_its_task_succeeded_in_the_same_transaction(store):
    """A runner killed between the attempt's record and the task's leaves no finished task for resume to run again."""
    store.create_run("r1", tasks=["a"], **RUN)
    attempt = store.start_attempt("r1", "a", 1, "k", "art/r1/a.ipynb")
    store.finish_attempt(attempt, "succeeded", ended_at=123.0)
    [task] = store.run_tasks("r1")
    assert (task.status, task.attempts, task.artifact, task.ended_at, task.error) == ("succeeded", 1, "art/r1/a.ipynb", 123.0, None)
    assert store.mark_abandoned("r1") == 0 and store.run_tasks("r1")[0].status == "succeeded"


def test_mark_abandoned(store):
    store.create_run("r1", tasks=["a", "b", "c", "d"], **RUN)
    done = store.start_attempt("r1", "a", 1, "k", "art")
    store.finish_attempt(done, "succeeded")
    store.set_task_state("r1", "a", "succeeded")
    hung = store.start_attempt("r1", "b", 1, "k", "art")
    store.set_task_state("r1", "c", "queued")
    assert store.mark_abandoned("r1") == 1
    got = store.get_attempt(hung)
    assert (got.status, got.error_kind, got.error) == (
        "failed", "abandoned", "the runner stopped while this attempt ran")
    assert got.ended_at is not None
    assert store.get_attempt(done).status == "succeeded"
    assert {t.task: t.status for t in store.run_tasks("r1")} == {
        "a": "succeeded", "b": "pending", "c": "pending", "d": "pending"}
    assert store.mark_abandoned("r1") == 0


def test_events_since_in_order(store):
    assert store.last_event_id() == 0
    store.create_run("r1", tasks=["a"], **RUN)
    store.create_run("r2", tasks=["a"], **RUN)
    store.set_task_state("r1", "a", "running", reason="code changed")
    attempt = store.start_attempt("r1", "a", 1, "k", "art")
    store.finish_attempt(attempt, "succeeded")
    store.finish_run("r1", "succeeded")
    events = store.events_since()
    assert [e["kind"] for e in events] == [
        "run_started", "run_started", "task_state", "attempt_started", "attempt_finished", "run_finished"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and store.last_event_id() == ids[-1]
    assert events[2]["data"] == {"status": "running", "reason": "code changed"} and events[2]["task"] == "a"
    assert [e["kind"] for e in store.events_since(ids[2])] == ["attempt_started", "attempt_finished", "run_finished"]
    assert [e["run_id"] for e in store.events_since(run_id="r2")] == ["r2"]
    assert len(store.events_since(limit=2)) == 2
    assert store.events_since(store.last_event_id()) == []


# lineage


def _run_task(store, run_id, task, reads=(), writes=(), key="k", status="succeeded") -> int:
    attempt = store.start_attempt(run_id, task, 1, key, f"art/{run_id}/{task}.ipynb")
    store.finish_attempt(attempt, status, reads=list(reads), writes=list(writes))
    store.set_task_state(run_id, task, status)
    return attempt


def test_lineage_of_a_two_step_pipeline(store):
    store.create_run("r1", tasks=["ingest", "clean"], **RUN)
    a = _run_task(store, "r1", "ingest", reads=[("raw/in.csv", "h0", 5)], writes=[("data/raw.csv", "h1", 10)])
    b = _run_task(store, "r1", "clean", reads=[("data/raw.csv", "h1", 10)], writes=[("data/clean.csv", "h2", 8)])

    tree = store.lineage("data/clean.csv")
    assert tree is not None
    assert (tree["path"], tree["hash"], tree["size"]) == ("data/clean.csv", "h2", 8)
    assert tree["producer"]["attempt"] == b and tree["producer"]["task"] == "clean"
    assert tree["producer"]["run_id"] == "r1" and tree["producer"]["number"] == 1
    [raw] = tree["inputs"]
    assert (raw["path"], raw["hash"], raw["producer"]["attempt"]) == ("data/raw.csv", "h1", a)
    [external] = raw["inputs"]
    assert external["path"] == "raw/in.csv" and external["producer"] is None and external["inputs"] == []

    raw_version = store.dataset_versions("data/raw.csv")[0]["version_id"]
    assert [c["attempt"] for c in store.version_consumers(raw_version)] == [b]
    clean_version = tree["version_id"]
    assert [v["path"] for v in store.version_inputs(clean_version)] == ["data/raw.csv"]
    io = store.attempt_io(b)
    assert [v["path"] for v in io["reads"]] == ["data/raw.csv"]
    assert [v["path"] for v in io["writes"]] == ["data/clean.csv"]

    tl = store.task_lineage("ingest")
    assert tl["task"] == "ingest" and tl["attempt"].id == a
    assert [r["path"] for r in tl["reads"]] == ["raw/in.csv"]
    assert [(w["path"], [c["task"] for c in w["consumers"]]) for w in tl["writes"]] == [("data/raw.csv", ["clean"])]
    with pytest.raises(NotFoundError):
        store.task_lineage("never_ran")
    assert store.lineage("data/clean.csv", depth=0)["truncated"] is True


def test_reads_link_to_newest_version_with_same_hash(store):
    store.create_run("r1", tasks=["make", "use"], **RUN)
    first = _run_task(store, "r1", "make", writes=[("d.csv", "h1", 1)])
    store.create_run("r2", tasks=["make", "use"], **RUN)
    second = _run_task(store, "r2", "make", writes=[("d.csv", "h1", 1)])  # same content, new version
    _run_task(store, "r2", "use", reads=[("d.csv", "h1", 1), ("ext.csv", "e1", 3)])
    _run_task(store, "r1", "use", reads=[("ext.csv", "e1", 3), ("other.csv", "o", 1)])
    versions = store.dataset_versions("d.csv")
    assert [v["producer"]["attempt"] for v in versions] == [second, first]  # newest first
    assert len(store.dataset_versions("ext.csv")) == 1  # external input recorded once, then reused
    assert store.dataset_versions("ext.csv")[0]["producer"] is None
    assert [c["task"] for c in store.version_consumers(versions[0]["version_id"])] == ["use"]
    assert store.version_consumers(versions[1]["version_id"]) == []


def test_read_then_rewrite_of_same_file_is_not_a_cycle(store):
    store.create_run("r1", tasks=["append"], **RUN)
    _run_task(store, "r1", "append", writes=[("log.csv", "h1", 1)])
    store.create_run("r2", tasks=["append"], **RUN)
    _run_task(store, "r2", "append", reads=[("log.csv", "h1", 1)], writes=[("log.csv", "h1", 1)])
    tree = store.lineage("log.csv")
    assert tree["producer"]["run_id"] == "r2"
    assert [i["producer"]["run_id"] for i in tree["inputs"]] == ["r1"]


def test_last_success_with_writes(store):
    store.create_run("r1", tasks=["t"], **RUN)
    assert store.last_success("t", "k1") is None
    _run_task(store, "r1", "t", key="k1", writes=[("out/a.csv", "ha", 3), ("out/b.csv", "hb", 4)])
    store.create_run("r2", tasks=["t"], **RUN)
    _run_task(store, "r2", "t", key="k1", status="failed", writes=[("out/a.csv", "hx", 3)])
    _run_task(store, "r2", "t", key="k2", writes=[("out/a.csv", "hy", 3)])
    hit = store.last_success("t", "k1")
    assert hit is not None and hit.run_id == "r1" and hit.cache_key == "k1"
    assert store.attempt_writes(hit.id) == [("out/a.csv", "ha", 3), ("out/b.csv", "hb", 4)]
    assert store.last_success("t", "k3") is None
    assert store.last_success("other", "k1") is None


# concurrency


def test_one_store_shared_by_threads(store):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                run_id = f"t{n}-{i}"
                store.create_run(run_id, tasks=["a"], **RUN)
                attempt = store.start_attempt(run_id, "a", 1, "k", "art")
                store.finish_attempt(attempt, "succeeded", writes=[(f"{run_id}.csv", "h", 1)])
                store.list_runs(limit=5)
                store.events_since(0, limit=50)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_runs() == 80
    assert len(store.events_since(limit=10_000)) == 80 * 3


# The functions below run in spawned processes: they must live at module level.

RUNS_PER_WRITER = 25  # 8 store operations per run: 200 per writer
WRITERS = 4
SHARED_INPUT = ("shared/input.csv", "h-input", 10)


def _writer(path: str, worker: int, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(60)
        store = Store(path)
        started = time.time()
        for i in range(RUNS_PER_WRITER):
            run_id = f"w{worker}-r{i:03d}"
            store.create_run(run_id, tasks=["a", "b"], **RUN)
            a = store.start_attempt(run_id, "a", 1, f"ka-{run_id}", f"art/{run_id}/a.ipynb", pid=os.getpid())
            a_out = (f"data/{run_id}/a.csv", f"h-{run_id}-a", 100)
            store.finish_attempt(a, "succeeded", reads=[SHARED_INPUT], writes=[a_out], log="ok")
            store.set_task_state(run_id, "a", "succeeded", ended_at=time.time(), reason="never ran")
            b = store.start_attempt(run_id, "b", 1, f"kb-{run_id}", f"art/{run_id}/b.ipynb", pid=os.getpid())
            store.finish_attempt(b, "succeeded", reads=[a_out], writes=[(f"data/{run_id}/b.csv", f"h-{run_id}-b", 5)])
            store.set_task_state(run_id, "b", "succeeded", ended_at=time.time())
            store.finish_run(run_id, "succeeded")
        store.close()
        results.put(("ok", f"writer {worker}", (started, time.time())))
    except BaseException:  # noqa: BLE001 - the parent process reports it
        results.put(("error", f"writer {worker}", traceback.format_exc()))


def _reader(path: str, expected_events: int, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(60)
        store = Store(path)
        seen: list[int] = []
        polls = 0
        deadline = time.monotonic() + 90
        while len(seen) < expected_events and time.monotonic() < deadline:
            store.list_runs(limit=20)
            store.count_runs()
            for event in store.events_since(seen[-1] if seen else 0, limit=500):
                seen.append(event["id"])
            polls += 1
        store.close()
        results.put(("ok", "reader", (seen, polls)))
    except BaseException:  # noqa: BLE001 - the parent process reports it
        results.put(("error", "reader", traceback.format_exc()))


def _opener(path: str, worker: int, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(60)
        with Store(path) as store:
            store.create_run(f"open-{worker}", tasks=["a"], **RUN)
        results.put(("ok", f"opener {worker}", None))
    except BaseException:  # noqa: BLE001 - the parent process reports it
        results.put(("error", f"opener {worker}", traceback.format_exc()))


def _run_processes(targets: list[tuple[Any, tuple]], timeout: float = 120) -> dict[str, Any]:
    """Start spawned processes together (a barrier), collect what each reports, fail on any error."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(targets))
    results = ctx.Queue()
    procs = [ctx.Process(target=fn, args=(*args, barrier, results)) for fn, args in targets]
    for p in procs:
        p.start()
    reports: dict[str, Any] = {}
    errors: list[str] = []
    try:
        for _ in procs:
            status, who, payload = results.get(timeout=timeout)
            if status == "ok":
                reports[who] = payload
            else:
                errors.append(f"{who}:\n{payload}")
    except queue.Empty:
        errors.append(f"timed out; reported: {sorted(reports)}")
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    assert not errors, "\n".join(errors)
    assert all(p.exitcode == 0 for p in procs)
    return reports


def test_processes_opening_a_fresh_file_at_once(tmp_path):
    path = str(tmp_path / "fresh" / "nbflow.db")
    _run_processes([(_opener, (path, n)) for n in range(4)])
    assert _sql(path, "PRAGMA user_version") == [(len(migrations.MIGRATIONS),)]
    assert _count(path, "runs") == 4


def test_writer_processes_and_a_reader_on_one_file(tmp_path):
    path = str(tmp_path / "nbflow.db")
    Store(path).close()  # migrate first: this test is about contention between writers
    runs = WRITERS * RUNS_PER_WRITER
    expected_events = runs * 8  # run_started, 2 x (attempt_started, attempt_finished, task_state), run_finished
    started = time.monotonic()
    reports = _run_processes(
        [(_writer, (path, n)) for n in range(WRITERS)] + [(_reader, (path, expected_events))]
    )
    elapsed = time.monotonic() - started

    spans = [reports[f"writer {n}"] for n in range(WRITERS)]
    seen, polls = reports["reader"]
    assert seen == list(range(1, expected_events + 1)), "the reader saw events out of order, twice, or not at all"

    with Store(path) as s:
        assert s.count_runs() == runs == s.count_runs("succeeded")
        assert s.last_event_id() == expected_events == _count(path, "events")
        run_id = "w2-r007"
        assert [(t.task, t.status) for t in s.run_tasks(run_id)] == [("a", "succeeded"), ("b", "succeeded")]
        tree = s.lineage(f"data/{run_id}/b.csv")
        assert tree is not None and tree["producer"]["run_id"] == run_id
        [a_out] = tree["inputs"]
        assert a_out["path"] == f"data/{run_id}/a.csv" and a_out["producer"]["task"] == "a"
        assert [i["path"] for i in a_out["inputs"]] == ["shared/input.csv"]
        assert len(s.dataset_versions("shared/input.csv")) == 1  # one external version, however many readers
    assert _count(path, "run_tasks") == 2 * runs
    assert _sql(path, "SELECT status, count(*) FROM attempts GROUP BY status") == [("succeeded", 2 * runs)]
    assert _count(path, "datasets") == 2 * runs + 1
    assert _count(path, "dataset_versions") == 2 * runs + 1
    assert _count(path, "lineage") == 4 * runs
    assert _sql(path, "PRAGMA integrity_check") == [("ok",)]
    overlap = min(end for _, end in spans) - max(start for start, _ in spans)
    print(f"\n{WRITERS} writers x {RUNS_PER_WRITER * 8} ops + reader ({polls} polls): {elapsed:.2f}s wall, "
          f"writers overlapped {overlap:.2f}s")


def test_creating_a_store_does_not_import_pandas(tmp_path):
    """sqlite-utils would import pandas and numpy (0.4 s of CPU) to map their types, which migrations never use."""
    import subprocess
    import sys

    code = ("import sys; from nbflow.store import Store; Store(sys.argv[1]).close(); import sqlite_utils.db as d; "
            "print('pandas' in sys.modules, 'numpy' in sys.modules, d.pd is None); import pandas; print(pandas.__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "nbflow.db")], check=True, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["False", "False", "True", "pandas"]  # and pandas still imports afterwards
