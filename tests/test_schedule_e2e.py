"""End to end in real time: `nbflow scheduler` as a process fires a seconds-level cron schedule and senses a real
file, through real papermill runs; `nbflow backfill` runs real slots and resumes. The store is asserted after."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbflow import Project

from .conftest import wait_for, write_notebook

pytestmark = pytest.mark.kernel

CONFIG = """jobs = 1

[schedules.tick]
cron = "* * * * * */2"
only = ["static"]
overlap = "skip"

[sensors.incoming]
glob = "incoming/*.csv"
parameter = "csv_path"
stable_seconds = 0.5
only = ["ingest"]
"""


def _project(tmp_path: Path) -> None:
    write_notebook(tmp_path / "static.ipynb", [("open('static.txt', 'w').write('fixed')", ["writes:static.txt"])])
    write_notebook(tmp_path / "ingest.ipynb", [("csv_path = ''", ["parameters"]),
                                               "rows = open(csv_path).read().splitlines()\nprint(len(rows), 'rows in', csv_path)"])
    (tmp_path / "incoming").mkdir()
    (tmp_path / "nbflow.toml").write_text(CONFIG)


def test_scheduler_fires_slots_senses_a_file_and_stops_cleanly(tmp_path):
    _project(tmp_path)
    log = open(tmp_path / "scheduler.log", "w")
    daemon = subprocess.Popen([sys.executable, "-m", "nbflow", "scheduler"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "COLUMNS": "200"})
    project = Project(tmp_path)
    try:
        def finished(trigger: str) -> list[dict]:
            return [r for r in project.runs(limit=100, include_noop=True) if r.trigger == trigger and r.status != "running"]

        wait_for(lambda: len(finished("schedule:tick")) >= 1, 60, "a first scheduled run")
        landing = tmp_path / "incoming" / "sales.csv"
        landing.write_text("a,b\n1,2\n")
        wait_for(lambda: len(finished("sensor:incoming")) == 1, 60, "the sensed file's run")
        wait_for(lambda: len(finished("schedule:tick")) >= 2, 60, "a second scheduled run")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        log.close()
    out = (tmp_path / "scheduler.log").read_text()
    assert "fired" in out and "is complete" in out and "stopped" in out and "Traceback" not in out

    ticks = sorted(finished("schedule:tick"), key=lambda r: r.created_at)
    assert all(r.status == "succeeded" and r.schedule == "tick" for r in ticks)
    statuses = [project.show(r.id).tasks[0].status for r in ticks]
    assert statuses[0] == "succeeded" and set(statuses[1:]) == {"skipped"}  # data-aware: nothing changed, nothing re-ran
    slots = project.slots("tick", limit=100)
    assert {s["run_id"] for s in slots if s["run_id"]} >= {r.id for r in ticks}
    assert all(s["run_date"] == r.logical_date for s in slots for r in ticks if s["run_id"] == r.id)
    assert len({s["slot"] for s in slots}) == len(slots)

    [sensed] = finished("sensor:incoming")
    assert sensed.status == "succeeded" and sensed.parameters["csv_path"] == str(landing)
    assert "2 rows in" in project.logs(sensed.id, "ingest").log
    [file_row] = project.sensors()[0]["files"]
    assert (file_row["path"], file_row["status"], file_row["run_id"]) == ("incoming/sales.csv", "succeeded", sensed.id)
    assert project.scheduler_status() == {"running": False, "holder": None}  # the lease was given back
    project.close()


def test_backfill_runs_each_day_with_its_run_date_and_resumes(tmp_path):
    code = "import os\nos.makedirs('out', exist_ok=True)\nopen(f'out/{run_date}.txt', 'w').write(run_date)"
    write_notebook(tmp_path / "daily.ipynb", [("run_date = ''", ["parameters"]), (code, ["writes:out/{run_date}.txt"])])

    def backfill() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nbflow", "backfill", "--start", "2026-01-01", "--end", "2026-01-02", "-c", "2"],
                              cwd=tmp_path, capture_output=True, text=True, check=False, timeout=240, env={**os.environ, "COLUMNS": "200"})

    first = backfill()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "backfill @daily: 2 slots, 2 at a time" in first.stdout and "2 succeeded" in first.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["2026-01-01.txt", "2026-01-02.txt"]
    second = backfill()
    assert second.returncode == 0 and "2 already succeeded" in second.stdout
    with Project(tmp_path) as project:
        runs = project.runs(include_noop=True)
        assert sorted(r.logical_date for r in runs) == ["2026-01-01", "2026-01-02"]
        assert {r.trigger for r in runs} == {"backfill"}


def test_scheduler_killed_mid_run_the_next_one_resumes_that_run_once(tmp_path):
    write_notebook(tmp_path / "slow.ipynb", [
        ("run_date = ''", ["parameters"]),
        "import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))",
        "while not os.path.exists('go.flag'):\n    time.sleep(0.1)",
        ("open('done.txt', 'w').write(run_date)", ["writes:done.txt"]),
    ])
    (tmp_path / "nbflow.toml").write_text('[schedules.once]\ncron = "0 0 1 1 *"\n')  # not due: the schedule exists

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "nbflow", "scheduler"], cwd=tmp_path,
                                stdout=open(tmp_path / "scheduler.log", "ab"), stderr=subprocess.STDOUT)

    first = start()
    try:
        with Project(tmp_path) as looking:
            wait_for(lambda: looking.scheduler_status()["running"], 120, "the scheduler to hold the lease")
        target = time.gmtime(time.time() + 3)  # now a cron that fires once, 3 s from now (6th field: seconds);
        cron = f"{target.tm_min} {target.tm_hour} {target.tm_mday} {target.tm_mon} * {target.tm_sec}"  # reloaded <= 5 s
        (tmp_path / "nbflow.toml").write_text(f'[schedules.once]\ncron = "{cron}"\ncatchup = "all"\n')
        wait_for(lambda: (tmp_path / "kernel.pid").exists(), 90, "the slot's notebook to start")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    project = Project(tmp_path)
    [slot] = project.slots("once")
    assert slot["status"] == "running" and slot["run_id"]  # what the killed scheduler left: claimed, run linked
    assert project.show(slot["run_id"]).run.status == "crashed"

    (tmp_path / "go.flag").write_text("go")
    second = start()
    try:
        wait_for(lambda: project.slots("once")[0]["status"] == "succeeded", 90, "the slot's run to be resumed")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    finally:
        if second.poll() is None:
            second.kill()
    [slot_after] = project.slots("once")
    assert (slot_after["run_id"], slot_after["tries"]) == (slot["run_id"], 2)
    assert [r.id for r in project.runs(include_noop=True)] == [slot["run_id"]]  # one run: resumed, not started again
    detail = project.show(slot["run_id"])
    assert detail.run.status == "succeeded"
    assert [(a.number, a.status, a.error_kind) for a in detail.attempts] == [(1, "failed", "abandoned"), (2, "succeeded", None)]
    assert "resuming its run" in (tmp_path / "scheduler.log").read_text()
    project.close()
