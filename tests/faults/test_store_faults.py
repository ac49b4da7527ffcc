"""Faults around the store and the artifacts: a store held locked by another process, an artifacts folder that
becomes unwritable, a store file deleted mid-run, and ten processes hammering one store."""
from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from nbflow import Project
from nbflow.store import Store

from ..conftest import wait_for, write_notebook
from .conftest import no_process_left, runner
from .invariants import broken

LOCK_SECONDS = 10.0


def _hold_the_write_lock(path: str, seconds: float, ready: Any) -> None:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    ready.set()
    time.sleep(seconds)  # the fault: another process keeps the store's write lock this long
    conn.execute("ROLLBACK")
    conn.close()


def test_a_store_locked_by_another_process_for_10_s_delays_records_not_the_notebooks(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_notebook(root / "first.ipynb", [("open('first.txt', 'w').write('1')", ["writes:first.txt"])])
    write_notebook(root / "long.ipynb", [
        ("import time\nopen('started.flag', 'w').close()", ["upstream:first"]),
        "for i in range(40):\n    print('tick', i, flush=True)\n    time.sleep(0.5)",
        ("open('long.txt', 'w').write('done')", ["writes:long.txt"]),
    ])
    write_notebook(root / "quick.ipynb", [("open('quick.txt', 'w').write('q')", ["upstream:first", "writes:quick.txt"])])
    proc = runner(root, None, "run")
    store = root / ".nbflow" / "nbflow.db"
    wait_for(lambda: (root / "started.flag").exists(), 120, "the long notebook to start")
    executed = next((root / "nbflow-runs").glob("*/long.ipynb"), None) or root / "missing"
    ready = multiprocessing.get_context("spawn").Event()
    holder = multiprocessing.get_context("spawn").Process(target=_hold_the_write_lock, args=(str(store), LOCK_SECONDS, ready))
    holder.start()
    assert ready.wait(30)
    locked_at = time.time()
    saves: set[float] = set()
    while holder.is_alive():  # the running notebook is saved every 2 s: watch its saves while the store is locked
        found = next((root / "nbflow-runs").glob("*/long.ipynb"), None)
        if found is not None:
            saves.add(found.stat().st_mtime)
        holder.join(0.25)
    unlocked_at = time.time()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert len({t for t in saves if locked_at < t < unlocked_at}) >= 3, (saves, locked_at, unlocked_at, executed)
    with Project(root) as project:
        detail = project.show()
    assert detail.run.status == "succeeded" and {t.status for t in detail.tasks} == {"succeeded"}
    assert broken(store) == {}


def test_an_artifacts_folder_that_becomes_unwritable_fails_the_attempt_clearly(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_notebook(root / "a.ipynb", [("import time\nopen('a.txt', 'w').write('a')\nwhile not __import__('os').path.exists("
                                       "'go.flag'):\n    time.sleep(0.05)", ["writes:a.txt"])])
    write_notebook(root / "b.ipynb", [("open('b.txt', 'w').write(open('a.txt').read())", ["reads:a.txt", "writes:b.txt"])])
    (root / "nbflow.toml").write_text("jobs = 1\n")
    proc = runner(root, None, "run")
    wait_for(lambda: (root / "a.txt").exists(), 120, "a to run")
    [run_dir] = (root / "nbflow-runs").iterdir()
    wait_for(lambda: (run_dir / "a.ipynb").exists(), 30, "a's first save")
    # the fault: the run's artifacts folder is replaced by a file (root ignores permissions, so chmod would not do)
    os.rename(run_dir, tmp_path / "moved")
    run_dir.write_text("not a folder")
    (root / "go.flag").write_text("")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    with Project(root) as project:
        detail = project.show()
    a = next(t for t in detail.tasks if t.task == "a")
    assert a.status == "failed" and "cannot write the executed notebook" in (a.error or "") and "Fix:" in (a.error or "")
    assert next(x for x in detail.attempts if x.task == "a").error_kind == "artifact"
    assert next(t for t in detail.tasks if t.task == "b").status == "upstream_failed"
    assert broken(root / ".nbflow" / "nbflow.db") == {}
    no_process_left(root)


def test_a_store_deleted_mid_run_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_notebook(root / "a.ipynb", [("import time, os\nopen('started.flag', 'w').close()\n"
                                       "while not os.path.exists('go.flag'):\n    time.sleep(0.05)", [])])
    write_notebook(root / "b.ipynb", [("print('b')", ["upstream:a"])])
    proc = runner(root, None, "run")
    wait_for(lambda: (root / "started.flag").exists(), 120, "a to start")
    for suffix in ("", "-wal", "-shm"):  # the fault: someone deletes the store (`rm -rf .nbflow`) mid-run
        (root / ".nbflow" / f"nbflow.db{suffix}").unlink(missing_ok=True)
    (root / "go.flag").write_text("")
    started = time.monotonic()
    out, _ = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 2, out
    assert "was deleted or replaced while this process was using it" in out and "Traceback" not in out
    no_process_left(root)


def _hammer(path: str, role: str, index: int, count: int, errors: Any) -> None:
    """One process doing `count` store transactions of one kind (a runner of its own project, a scheduler, a reader)."""
    try:
        if role == "runner":
            with Store(path, f"project-{index}", f"/p/{index}") as store:
                for i in range(count // 5):  # five transactions per run, as a runner writes them
                    run_id = f"p{index}-r{i}"
                    store.create_run(run_id, trigger="manual", logical_date="2026-01-01", parameters={}, selection={}, tasks=["t"])
                    attempt = store.start_attempt(run_id, "t", 1, "k", "x.ipynb")
                    store.finish_attempt(attempt, "succeeded", writes=[(f"out/{i}.csv", f"h{i}", i)], reads=[("in.csv", "h", 1)])
                    store.set_task_state(run_id, "t", "succeeded", attempts=1)
                    store.finish_run(run_id, "succeeded")
        elif role == "scheduler":
            with Store(path, "project-0") as store:
                store.acquire_lease("scheduler:x:1:a", "x", 1, 0.0, 15, lambda row: False)
                for i in range(count):
                    store.renew_lease("scheduler:x:1:a", float(i))
        else:
            with Store(path, f"project-{index % 3}") as store:
                for _ in range(count):
                    store.list_runs(limit=5)
                    store.last_event_id()
    except Exception:  # noqa: BLE001 - reported to the test
        errors.put(f"{role} {index}: {traceback.format_exc()}")


def test_ten_processes_times_a_thousand_transactions_on_one_store(tmp_path: Path) -> None:
    path = str(tmp_path / "central.db")
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    roles = ["runner"] * 6 + ["scheduler"] + ["reader"] * 3
    procs = [ctx.Process(target=_hammer, args=(path, role, i, 1000, errors)) for i, role in enumerate(roles)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, failures
    assert all(p.exitcode == 0 for p in procs)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM runs WHERE status = 'succeeded'").fetchone()[0] == 6 * 200
    per_project = dict(conn.execute("SELECT project, count(*) FROM runs GROUP BY project").fetchall())
    assert per_project == {f"project-{i}": 200 for i in range(6)}
    conn.close()
    assert broken(Path(path)) == {}
    summary = subprocess.run([sys.executable, "-c", "import json,sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                              "print(json.dumps(c.execute('select count(*) from events').fetchone()))", path],
                             capture_output=True, text=True, check=True)
    assert json.loads(summary.stdout)[0] >= 6 * 200 * 5
