"""Alerts from real runs (real kernels, real store) to real local endpoints: json:// posts to an HTTP server on
127.0.0.1, a `command:` script, a target that is down; and the worked example of the README, a failing run fired by
`nbflow scheduler` whose Slack-style alert a webhook receives."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow import Project

from .conftest import wait_for, write_notebook
from .webhook import closed_port, webhook

pytestmark = pytest.mark.kernel

FLAKY = [("import os", []), ("if os.path.exists('broken'):\n    raise RuntimeError('warehouse unreachable')\nprint('ok')", [])]


def nbflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow", *args], check=False, cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "COLUMNS": "200"})


def targets(url: str) -> str:
    return (f'[alerts]\ncritical = ["{url}/crit"]\nwarning = ["{url}/warn"]\ninfo = ["{url}/info"]\n'
            'retry_delay = "0.1s"\n')


def test_one_critical_per_failure_streak_then_a_recovery_info(tmp_path):
    write_notebook(tmp_path / "flaky.ipynb", FLAKY)
    (tmp_path / "broken").write_text("")
    with webhook() as hook:
        (tmp_path / "nbflow.toml").write_text(targets(hook.url("json")))
        project = Project(tmp_path)
        first = project.run()
        assert first.status == "failed"
        [crit] = hook.received("/crit")  # the run returns after its alerts were delivered (a bounded wait)
        assert crit["type"] == "failure" and crit["title"] == f"[CRITICAL] {tmp_path.name}: task flaky failed"
        lines = crit["message"].splitlines()
        assert lines[:5] == [f"project: {tmp_path.name}", f"run: {first.run_id} (trigger manual)", "task: flaky",
                             "status: failed after 1 attempt", "error: cell 1: RuntimeError: warehouse unreachable"]
        assert lines[5].startswith("duration: ") and lines[-1] == f"more: nbflow show {first.run_id}"

        second = project.run()  # still failing: grouped into the open streak, nothing sent
        assert second.status == "failed" and len(hook.received("/crit")) == 1
        os.remove(tmp_path / "broken")
        third = project.run()
        assert third.ok
        infos = hook.received("/info")
        [recovered] = [i for i in infos if "recovered" in i["title"]]
        assert recovered["title"] == f"[INFO] {tmp_path.name}: task flaky recovered"
        assert "after 2 failed runs since" in recovered["message"] and f"first: run {first.run_id}" in recovered["message"]
        assert any(i["title"].endswith("run succeeded") for i in infos)
        assert len(hook.received("/crit")) == 1 and hook.received("/warn") == []

        rows = project.alerts()
        assert [(r.event, r.outcome, r.run_id) for r in rows if r.event == "task_failed"] == [
            ("task_failed", "grouped", second.run_id), ("task_failed", "routed", first.run_id)]
        assert all(d.status == "sent" and d.attempts == 1 for r in rows for d in r.deliveries)


def test_a_target_that_is_down_is_retried_and_recorded_failed_and_the_run_is_unaffected(tmp_path):
    write_notebook(tmp_path / "ok.ipynb", ["print('fine')"])
    down = f"json://127.0.0.1:{closed_port()}/hook"
    (tmp_path / "nbflow.toml").write_text(f'[alerts]\ninfo = ["{down}"]\nretries = 2\nretry_delay = "0.1s"\ntimeout = 2\n')
    out = nbflow("run", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    shown = nbflow("alerts", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    [alert] = json.loads(shown.stdout)
    [delivery] = alert["deliveries"]
    assert alert["event"] == "run_succeeded" and alert["severity"] == "info"
    assert delivery["status"] == "failed" and delivery["attempts"] == 3 and "Connection" in delivery["error"]
    assert delivery["target"].startswith("json://127.0.0.1:")
    table = nbflow("alerts", cwd=tmp_path)
    assert "failed" in table.stdout and "3 attempts" in table.stdout
    assert Project(tmp_path).show().run.status == "succeeded"


def test_a_command_target_gets_the_alert_as_json_on_stdin_and_in_env_and_no_alerts_silences_a_run(tmp_path):
    write_notebook(tmp_path / "bad.ipynb", ["x = 1", "1 / 0"])
    script = tmp_path / "page.sh"
    script.write_text('#!/bin/sh\ncat > "$1"\nprintf "%s|%s|%s" "$NBFLOW_ALERT_SEVERITY" "$NBFLOW_ALERT_EVENT" '
                      '"$NBFLOW_ALERT_RUN_ID" > env.txt\n')
    script.chmod(0o755)
    (tmp_path / "nbflow.toml").write_text('[alerts]\ncritical = ["command:./page.sh stdin.json"]\n')
    quiet = nbflow("run", "--no-alerts", cwd=tmp_path)
    assert quiet.returncode == 1 and not (tmp_path / "stdin.json").exists()
    assert Project(tmp_path).alerts() == []
    loud = nbflow("run", cwd=tmp_path)
    assert loud.returncode == 1
    run_id = Project(tmp_path).show().run.id
    got = json.loads((tmp_path / "stdin.json").read_text())
    assert (got["severity"], got["event"], got["run_id"], got["task"]) == ("critical", "task_failed", run_id, "bad")
    assert got["error"] == "cell 1: ZeroDivisionError: division by zero" and got["command"] == f"nbflow show {run_id}"
    assert (tmp_path / "env.txt").read_text() == f"critical|task_failed|{run_id}"


def test_a_task_or_schedule_alert_level_relevels_its_failures(tmp_path):
    write_notebook(tmp_path / "minor.ipynb", ["1 / 0"])
    with webhook() as hook:
        (tmp_path / "nbflow.toml").write_text(targets(hook.url("json")) + '[tasks."minor"]\nalert = "warning"\n')
        assert Project(tmp_path).run().status == "failed"
        [warning] = hook.received("/warn")
        assert warning["title"].startswith("[WARNING]") and "task minor failed" in warning["title"]
        assert hook.received("/crit") == []


SCHEDULED = """jobs = 1

[schedules.nightly]
cron = "* * * * * */2"
overlap = "skip"

[alerts]
critical = ["{url}"]
"""


def test_worked_example_a_failing_scheduled_run_sends_a_slack_style_alert(tmp_path):
    """The README's example: `nbflow scheduler` fires a slot, its run fails, the webhook gets one Slack-style post."""
    write_notebook(tmp_path / "load_orders.ipynb", [
        ("import socket", []),
        ("conn = socket.create_connection(('127.0.0.1', WAREHOUSE_PORT), timeout=2)".replace("WAREHOUSE_PORT", str(closed_port())),
         ["uses:warehouse"])])
    with webhook() as hook:
        slack = hook.url("json", "/services/T000/B000/XXXX") + "?:message=text&:version&:attachments"
        (tmp_path / "nbflow.toml").write_text(SCHEDULED.format(url=slack))
        log = open(tmp_path / "scheduler.log", "w")
        daemon = subprocess.Popen([sys.executable, "-m", "nbflow", "scheduler"], cwd=tmp_path, stdout=log,
                                  stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
        try:
            post = hook.wait(1, "/services/T000/B000/XXXX", timeout=90)[0]
            project = Project(tmp_path)
            wait_for(lambda: any(r.status == "failed" for r in project.runs()), 30, "the failed scheduled run")
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            finally:
                if daemon.poll() is None:
                    daemon.kill()
                log.close()
        run = next(r for r in project.runs() if r.status == "failed")
        assert set(post) == {"title", "text", "type"} and post["type"] == "failure"
        assert post["title"] == f"[CRITICAL] {tmp_path.name}: task load_orders failed"
        assert f"run: {run.id} (trigger schedule:nightly)" in post["text"]
        assert "error: cell 1: ConnectionRefusedError: [Errno 111] Connection refused" in post["text"]
        (tmp_path / "received.json").write_text(json.dumps(post, indent=2))
        # later slots of the same failing task are grouped: still one post while the streak is open
        assert len([r for r in project.alerts() if r.event == "task_failed" and r.outcome == "routed"]) == 1
