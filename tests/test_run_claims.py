"""Two runs of one project at once (issue 10, bug 3): a run claims the data it reads and writes; a second run of
overlapping data is refused before anything executes (or waits with --wait); disjoint runs go at once; a dead
runner's claims hold nothing; the scheduler's slot waits and says so."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.claims import READ, WRITE, Claim, clash
from nbflow.errors import RunConflictError
from nbflow.schedule.spec import schedule_from

from .conftest import wait_for, write_notebook
from .schedule_fakes import FakeClock, at


def _gated(root: Path) -> Path:
    """`make` writes data/{run_date}/x.csv and then waits for go.flag; `use` reads it and checks it is this run's."""
    write_notebook(root / "make.ipynb", [
        ("run_date = ''\nrun_id = ''", ["parameters"]),
        ("import os, time\nos.makedirs(f'data/{run_date}', exist_ok=True)\nopen(f'data/{run_date}/x.csv', 'w').write(run_id)\n"
         "open(f'started-{run_date}.flag', 'w').close()\nwhile not os.path.exists('go.flag'):\n    time.sleep(0.05)",
         ["writes:data/{run_date}/x.csv"]),
    ])
    write_notebook(root / "use.ipynb", [
        ("run_date = ''\nrun_id = ''", ["parameters"]),
        ("assert open(f'data/{run_date}/x.csv').read() == run_id, 'another run overwrote my input'",
         ["reads:data/{run_date}/x.csv"]),
    ])
    (root / "nbflow.toml").write_text("jobs = 2\n")
    return root


def _nbflow(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "nbflow", *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "300"})


def test_claims_clash_only_on_shared_data_with_a_writer() -> None:
    w, r = Claim("p", "data/2026-01-01/x.csv", WRITE), Claim("p", "data/2026-01-01/x.csv", READ)
    assert clash(w, r) and clash(r, w) and clash(w, w) and not clash(r, r)
    assert clash(Claim("p", "data", WRITE), r)  # a folder holds what is under it
    assert not clash(w, Claim("p", "data/2026-01-02/x.csv", WRITE))  # another day
    assert not clash(w, Claim("q", "data/2026-01-01/x.csv", WRITE))  # another project's own data
    assert clash(Claim("", "/lake/x.parquet", WRITE), Claim("", "/lake/*.parquet", READ))  # shared paths


@pytest.mark.kernel
def test_a_second_run_of_the_same_data_is_refused_before_anything_runs(tmp_path: Path) -> None:
    root = _gated(tmp_path)
    first = _nbflow(root, "run", "--force", "-p", "run_date=2026-01-01")
    try:
        wait_for(lambda: (root / "started-2026-01-01.flag").exists(), 120, "the first run's writer")
        second = subprocess.run([sys.executable, "-m", "nbflow", "run", "--force", "-p", "run_date=2026-01-01"], cwd=root,
                                capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "COLUMNS": "300"})
        assert second.returncode == 2, second.stdout + second.stderr
        with Project(root) as project:
            [live] = project.runs(include_noop=True)  # nothing recorded for the refused run
        message = second.stderr.replace("\n", " ")
        assert f"run {live.id} (pid {first.pid} on" in message and "data/2026-01-01/x.csv" in message
        assert "--wait" in message and "Traceback" not in message
    finally:
        (root / "go.flag").write_text("")
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err


@pytest.mark.kernel
def test_wait_runs_the_second_one_after_the_first(tmp_path: Path) -> None:
    root = _gated(tmp_path)
    first = _nbflow(root, "run", "--force", "-p", "run_date=2026-01-01")
    wait_for(lambda: (root / "started-2026-01-01.flag").exists(), 120, "the first run's writer")
    with Project(root) as project:
        first_id = project.runs(include_noop=True)[0].id
    log = tmp_path / "second.log"
    with open(log, "w") as out:
        second = subprocess.Popen([sys.executable, "-m", "nbflow", "run", "--force", "--wait", "-p", "run_date=2026-01-01"],
                                  cwd=root, stdout=out, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "300"})
        wait_for(lambda: f"waiting for run {first_id}" in log.read_text().replace("\n", " "), 120, "the second run to wait")
        with Project(root) as project:
            assert len(project.runs(include_noop=True)) == 1  # it waits before recording anything
        (root / "started-2026-01-01.flag").unlink()
        (root / "go.flag").write_text("")
        out1, err1 = first.communicate(timeout=120)
        second.wait(120)
    assert first.returncode == 0 and second.returncode == 0, (out1, err1, log.read_text())
    with Project(root) as project:
        runs = project.runs(include_noop=True)
        assert [r.status for r in runs] == ["succeeded", "succeeded"]
        second_run, first_run = runs
        assert second_run.started_at is not None and first_run.ended_at is not None
        assert second_run.started_at >= first_run.ended_at - 0.5  # it started after the first one ended


@pytest.mark.kernel
def test_runs_of_disjoint_data_go_at_once(tmp_path: Path) -> None:
    root = _gated(tmp_path)
    day1 = _nbflow(root, "run", "-p", "run_date=2026-01-01")
    day2 = _nbflow(root, "run", "-p", "run_date=2026-01-02")
    wait_for(lambda: (root / "started-2026-01-01.flag").exists() and (root / "started-2026-01-02.flag").exists(), 120,
             "both days' writers to run at the same time")
    (root / "go.flag").write_text("")
    for proc in (day1, day2):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err


@pytest.mark.kernel
def test_a_dead_runners_claims_hold_nothing(tmp_path: Path) -> None:
    root = _gated(tmp_path)
    first = _nbflow(root, "run", "-p", "run_date=2026-01-01")
    wait_for(lambda: (root / "started-2026-01-01.flag").exists(), 120, "the first run's writer")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    (root / "go.flag").write_text("")
    second = subprocess.run([sys.executable, "-m", "nbflow", "run", "--force", "-p", "run_date=2026-01-01"], cwd=root,
                            capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stdout + second.stderr


@pytest.mark.kernel
def test_a_scheduled_slot_whose_data_is_held_waits_and_says_so(tmp_path: Path) -> None:
    root = _gated(tmp_path)
    (root / "go.flag").write_text("")
    project = Project(root)
    blocking = "blocker-run"  # a run of this very process holds the day's data: alive, by the liveness rule
    project.store.create_run(blocking, trigger="manual", logical_date="2026-01-10", parameters={}, selection={}, tasks=["make"],
                             claims=[Claim(project.name, "data/2026-01-10/x.csv", WRITE)])
    spec = schedule_from("daily", {"cron": "0 0 * * *"}, "test")
    clock = FakeClock(at("2026-01-10T00:00"))
    events: list[tuple[str, dict[str, object]]] = []
    scheduler = project.scheduler(clock=clock, on_event=lambda kind, data: events.append((kind, dict(data))))
    scheduler.specs = lambda: ([spec], [])

    async def scenario() -> None:
        scheduler.store.sync_config_schedules([{"name": "daily", "source": "config", "cron": "0 0 * * *", "timezone": "UTC",
                                                 "parameters": {}, "only_tasks": [], "catchup": "all", "max_concurrent": 1,
                                                 "overlap": "queue", "jobs": None}], at("2026-01-09T00:00").timestamp())
        await scheduler.tick()
        await asyncio.gather(*scheduler.active.values())
        [slot] = project.slots("daily")
        assert slot["status"] == "queued" and f"waits for run {blocking}" in slot["reason"], slot
        assert any(kind == "run_waiting" for kind, _ in events)
        project.store.finish_run(blocking, "succeeded")
        clock.advance(5)
        await scheduler.tick()
        await asyncio.gather(*scheduler.active.values())
        [slot] = project.slots("daily")
        assert slot["status"] == "succeeded", slot

    asyncio.run(scenario())
    shown = subprocess.run([sys.executable, "-m", "nbflow", "schedule", "slots"], cwd=root, capture_output=True, text=True,
                           timeout=60, check=True, env={**os.environ, "COLUMNS": "300"})
    assert "succeeded" in shown.stdout
    project.close()


def test_the_conflict_error_names_the_run_its_pid_and_a_path() -> None:
    err = RunConflictError("r1", 123, "host-a", "data/x.csv", "write", "read")
    assert "run r1 (pid 123 on host-a)" in str(err) and "'data/x.csv'" in str(err) and "Fix:" in str(err)
