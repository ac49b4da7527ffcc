"""Circuit breakers with real runs: a notebook that connects to a local port where nothing listens (the outside
service is down) opens its breaker; later runs and a backfill find it open and block the task without attempting
it; after the cooldown the next run probes, the service is back (the test listens on that port), and it closes."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow import Project

from .conftest import wait_for, write_notebook
from .webhook import closed_port, webhook

pytestmark = pytest.mark.kernel


def nbflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow", *args], check=False, cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "COLUMNS": "200"})


def config(url: str, cooldown: str) -> str:
    return (f'[alerts]\ncritical = ["{url}/crit"]\ninfo = ["{url}/info"]\n\n'
            f'[breakers.warehouse]\nfailures = 2\nwindow = "15m"\ncooldown = "{cooldown}"\n\n'
            '[tasks."load"]\nretries = 1\nretry_delay = 0.1\n')


def test_a_breaker_opens_blocks_every_kind_of_run_then_probes_and_closes(tmp_path):
    port = closed_port()
    write_notebook(tmp_path / "load.ipynb", [
        ("import socket", ["uses:warehouse"]),
        f"socket.create_connection(('127.0.0.1', {port}), timeout=2).close()",
        ("open('loaded.txt', 'w').write('rows')", ["writes:loaded.txt"])])
    write_notebook(tmp_path / "report.ipynb", [("print(open('loaded.txt').read())", ["reads:loaded.txt"])])
    write_notebook(tmp_path / "local.ipynb", ["print('needs no warehouse')"])
    with webhook() as hook:
        (tmp_path / "nbflow.toml").write_text(config(hook.url("json"), "1h"))
        project = Project(tmp_path)

        first = project.run()  # two failed attempts (one retry) reach failures = 2: the breaker opens
        states = {t.task: t.status for t in first.tasks}
        assert states == {"load": "failed", "report": "upstream_failed", "local": "succeeded"}
        [breaker] = project.breakers()
        assert breaker["state"] == "open" and breaker["failures"] == 2 and breaker["used_by"] == ["load"]
        assert breaker["last_error"] == "ConnectionRefusedError: [Errno 111] Connection refused"
        titles = [p["title"] for p in hook.received("/crit")]
        assert any("circuit breaker warehouse opened after 2 failures within 15 min" in t for t in titles)

        second = project.run()  # open: load is blocked, not attempted; downstream upstream_failed
        detail = project.show(second.run_id)
        rows = {t.task: t for t in detail.tasks}
        assert rows["load"].status == "blocked" and rows["load"].attempts == 0
        assert "circuit breaker 'warehouse' is open since" in rows["load"].reason and "next probe at" in rows["load"].reason
        assert rows["report"].status == "upstream_failed" and rows["report"].reason == "upstream load blocked"
        assert rows["local"].status == "skipped"
        assert not [a for a in detail.attempts if a.task == "load"]  # no attempt, so no kernel
        assert second.status == "failed"
        assert any(p["title"].endswith("run failed: 1 task blocked") for p in hook.received("/crit"))

        shown = nbflow("breakers", cwd=tmp_path)
        assert shown.returncode == 0 and "warehouse" in shown.stdout and "open" in shown.stdout
        backfill = project.backfill("2026-01-01", "2026-01-01", only=["load"])  # a backfill shares the state
        [slot] = backfill.slots
        assert slot.status == "failed" and project.show(slot.run_id).tasks[0].status == "blocked"

        # the cooldown passes (shortened in the file, read by a new Project), the warehouse comes back
        (tmp_path / "nbflow.toml").write_text(config(hook.url("json"), "1s"))
        project = Project(tmp_path)
        wait_for(lambda: project.breakers()[0]["state"] == "half_open", 15, "the breaker to turn half-open")
        with socket.socket() as warehouse:
            warehouse.bind(("127.0.0.1", port))
            warehouse.listen()
            third = project.run()
        assert {t.task: t.status for t in third.tasks}["load"] == "succeeded" and third.ok
        assert project.breakers()[0]["state"] == "closed" and project.breakers()[0]["failures"] == 0
        infos = [p["title"] for p in hook.received("/info")]
        assert any(t.endswith("circuit breaker warehouse closed") for t in infos)
        assert any(t.endswith("task load recovered") for t in infos) and any(t.endswith("the pipeline recovered") for t in infos)

        missing = nbflow("breakers", "reset", "nope", cwd=tmp_path)
        assert missing.returncode == 2 and "no circuit breaker 'nope'" in missing.stderr and "warehouse" in missing.stderr
        reset = nbflow("breakers", "reset", "warehouse", cwd=tmp_path)
        assert reset.returncode == 0 and "closed" in reset.stdout
        assert json.loads(nbflow("breakers", "--json", cwd=tmp_path).stdout)[0]["state"] == "closed"


def test_check_failures_never_open_a_breaker(tmp_path):
    write_notebook(tmp_path / "gate.ipynb", [("x = 1", ["uses:warehouse"]), ("assert x == 2, 'bad data'", ["check"])])
    (tmp_path / "nbflow.toml").write_text('[breakers.warehouse]\nfailures = 1\n')
    project = Project(tmp_path)
    assert project.run().tasks[0].status == "check_failed"
    assert project.breakers()[0]["state"] == "closed" and project.breakers()[0]["failures"] == 0
