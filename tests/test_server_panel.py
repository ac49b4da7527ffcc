"""The REST routes the panel's daily-use views need (issue 14), through a real `jupyter server`, real runs and SQLite:
resume, dry run, queued runs, run-form fields, timeline, executed-notebook JSON, lineage paths, duration trends,
attempt files, schedules with cron previews and backfill, and the sources fingerprint of `changes`."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import FIXTURES, write_notebook
from .test_server import Api, jupyter_server

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Path]]:
    root = tmp_path_factory.mktemp("panel") / "root"
    demo = root / "demo"
    write_notebook(demo / "a.ipynb", [("n = 3\nrun_date = '2026-01-01'", ["parameters"]),
                                      ("import pathlib\npathlib.Path('data').mkdir(exist_ok=True)\n"
                                       "pathlib.Path('data/a.txt').write_text('a' * n)", ["writes:data/a.txt"])])
    write_notebook(demo / "b.ipynb", [("print(open('data/a.txt').read())", ["reads:data/a.txt"])])
    (demo / "nbflow.toml").write_text("jobs = 2\n")
    (root / "failing").mkdir()
    shutil.copy(FIXTURES / "fails_in_cell_2.ipynb", root / "failing" / "fails_in_cell_2.ipynb")
    (root / "failing" / "nbflow.toml").write_text("jobs = 1\n")
    # a long task that writes a file: a second run of it would write the same file, so it is refused (or queued)
    write_notebook(root / "sleepy" / "slow.ipynb", [("import time, pathlib\ntime.sleep(600)\npathlib.Path('x.txt').write_text('x')",
                                                     ["writes:x.txt"])])
    (root / "sleepy" / "nbflow.toml").write_text("jobs = 1\n")
    with jupyter_server(root) as api:
        yield api, root


@pytest.fixture(scope="module")
def demo_run(server: tuple[Api, Path]) -> dict[str, Any]:
    api, _ = server
    r = api.post("runs", {"parameters": {"n": 5}}, project="demo")
    assert r.status_code == 202, r.text
    return api.wait_run("demo", r.json()["run_id"])


def test_run_form_fields_carry_the_value_the_run_will_use(server: tuple[Api, Path]) -> None:
    api, _ = server
    fields = {f["name"]: f for f in api.get("parameters", project="demo").json()["fields"]}
    assert fields["run_date"]["value"] == dt.date.today().isoformat()  # not the notebook's 2026-01-01
    assert fields["run_date"]["default"] == "2026-01-01"
    assert fields["n"] == {**fields["n"], "value": 3, "type": "int", "declared_in": ["a.ipynb"], "source": "notebook"}
    assert fields["run_id"]["editable"] is False
    executor = api.get("parameters", project="demo").json()["executor"]  # the Run form's choice (issue 12)
    assert executor["default"] == "local" and executor["choices"] == ["local", "dask"]
    assert executor["dask"]["where"] == "a local cluster of 2 workers" and executor["dask"]["address"] is None


def test_dry_run_says_what_would_run_and_why_without_recording(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, _ = server
    before = api.get("runs", project="demo").json()["total"]
    plan = api.post("dry-run", {"parameters": {"n": 5}}, project="demo").json()
    assert {t["task"]: (t["action"], t["reason"][:10]) for t in plan["tasks"]} == {
        "a": ("skip", "up to date"), "b": ("skip", "up to date")}
    plan = api.post("dry-run", {"parameters": {"n": 6}}, project="demo").json()
    actions = {t["task"]: t for t in plan["tasks"]}
    assert actions["a"]["action"] == "run" and "n" in actions["a"]["reason"]
    assert actions["b"]["reason"] == "upstream a will run"
    assert api.get("runs", project="demo").json()["total"] == before  # nothing recorded
    r = api.post("dry-run", {"only": ["nope"]}, project="demo")
    assert r.status_code == 400 and "nope" in r.json()["message"]


def test_timeline_attempt_files_history_and_lineage_paths(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, _ = server
    run_id = demo_run["id"]
    timeline = api.get(f"runs/{run_id}/timeline", project="demo").json()
    phases = {a["task"]: a for a in timeline["attempts"]}
    a = phases["a"]
    assert a["queued"] <= a["started"] <= a["cells_started"] <= a["ended"]  # queued, kernel start, running
    io = api.get(f"runs/{run_id}/tasks/a/attempts/1/io", project="demo").json()
    assert [(w["path"], w["size"], w["open"]) for w in io["writes"]] == [("data/a.txt", 5, "demo/data/a.txt")]
    history = api.get("tasks/a/history", project="demo").json()["attempts"]
    assert history[0]["run_id"] == run_id and history[0]["duration"] > 0
    assert api.get("datasets", project="demo", prefix="data/").json()["paths"] == ["data/a.txt"]
    assert api.get("datasets", project="demo", prefix="zzz").json()["paths"] == []


def test_executed_notebook_json_is_served_only_from_the_artifacts_folder(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, root = server
    executed = next(t for t in demo_run["tasks"] if t["name"] == "a")["executed"]
    r = api.get("notebook", project="demo", path=executed)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    nb = r.json()["notebook"]
    assert nb["nbformat"] == 4 and any(c["cell_type"] == "code" for c in nb["cells"])
    for bad in ("demo/a.ipynb", "demo/nbflow-runs/../a.ipynb", "demo/nbflow.toml", "../etc/passwd"):
        assert api.get("notebook", project="demo", path=bad).status_code == 404, bad


def test_resume_reruns_what_failed_and_refuses_a_finished_run(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, _ = server
    r = api.post("runs", {}, project="failing")
    run = api.wait_run("failing", r.json()["run_id"])
    assert run["status"] == "failed"
    r = api.post(f"runs/{run['id']}/resume", project="failing")
    assert r.status_code == 202, r.text
    again = api.wait_until("failing", lambda: len(api.get(f"runs/{run['id']}", project="failing").json()["tasks"][0]["attempts"]) == 2
                           and api.get(f"runs/{run['id']}", project="failing").json()["status"] == "failed")
    assert again
    r = api.post(f"runs/{demo_run['id']}/resume", project="demo")
    assert r.status_code == 409 and "nothing left to do" in r.json()["message"]


def test_a_queued_run_starts_when_the_running_one_ends(server: tuple[Api, Path]) -> None:
    api, _ = server
    first = api.post("runs", {}, project="sleepy").json()["run_id"]
    refused = api.post("runs", {}, project="sleepy")
    assert refused.status_code == 409 and "x.txt" in refused.json()["message"]  # without queue: refused (run claims)
    r = api.post("runs", {"queue": True}, project="sleepy")
    assert r.status_code == 202 and r.json()["queued"] is True and r.json()["position"] == 1, r.text
    queued = r.json()["run_id"]
    history = api.get("runs", project="sleepy").json()
    assert [q["id"] for q in history["queued"]] == [queued] and history["queued"][0]["status"] == "queued"
    assert api.get("runs", project="sleepy", status="queued").json()["queued"][0]["id"] == queued
    dropped = api.post("runs", {"queue": True, "executor": "dask"}, project="sleepy").json()["run_id"]
    waiting = {q["id"]: q for q in api.get("runs", project="sleepy").json()["queued"]}
    assert waiting[dropped]["executor"] == "dask" and waiting[queued]["executor"] is None  # kept until it starts
    assert api.post("runs", {"queue": True, "executor": "spark"}, project="sleepy").status_code == 400
    assert api.post(f"runs/{dropped}/cancel", project="sleepy").json()["dequeued"] is True  # unqueue
    assert api.post(f"runs/{first}/cancel", project="sleepy").status_code == 202
    assert api.wait_until("sleepy", lambda: api.get(f"runs/{queued}", project="sleepy").status_code == 200, timeout=60)
    assert api.get("runs", project="sleepy").json()["queued"] == []
    assert api.post(f"runs/{queued}/cancel", project="sleepy").status_code in (202, 409)
    api.wait_run("sleepy", queued)
    assert api.get(f"runs/{dropped}", project="sleepy").status_code == 404  # never started


def test_history_filters_and_grid(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, _ = server
    noop = api.wait_run("demo", api.post("runs", {"parameters": {"n": 5}}, project="demo").json()["run_id"])
    assert noop["status"] == "succeeded"
    shown = api.get("runs", project="demo", ran=1, tasks=1).json()
    assert noop["id"] not in [r["id"] for r in shown["runs"]]  # nothing ran in it: hidden
    assert noop["id"] not in [r["id"] for r in api.get("runs", project="demo").json()["runs"]]  # hidden by default too
    every = api.get("runs", project="demo", tasks=1, all=1).json()
    row = next(r for r in every["runs"] if r["id"] == noop["id"])
    assert row["ran"] == 0 and row["tasks"] == {"a": "skipped", "b": "skipped"}
    assert api.get("runs", project="demo", status="failed").json()["runs"] == []
    assert api.get("runs", project="demo", trigger="schedule:").json()["runs"] == []
    assert len(api.get("runs", project="demo", trigger="jupyter", all=1).json()["runs"]) == every["total"]
    assert api.get("runs", project="demo", status="nope").status_code == 400


def test_schedules_add_pause_preview_and_backfill(server: tuple[Api, Path]) -> None:
    api, _ = server
    overview = api.get("schedules", project="demo").json()
    assert overview["schedules"] == [] and overview["scheduler"]["running"] is False
    preview = api.get("cron", expr="*/15 * * * *", timezone="Europe/Paris").json()
    assert len(preview["next"]) == 5 and preview["next"][0].endswith(("+01:00", "+02:00"))
    assert preview["description"] == "Every 15 minutes"
    r = api.get("cron", expr="61 * * * *")
    assert r.status_code == 400 and "minute" in r.json()["message"] and r.json()["field"] == "cron"
    r = api.post("schedules", {"name": "hourly", "cron": "0 * * * *", "timezone": "UTC", "parameters": {"n": 2}}, project="demo")
    assert r.status_code == 201, r.text
    assert api.post("schedules/hourly/pause", project="demo").status_code == 200
    assert api.get("schedules", project="demo").json()["schedules"][0]["paused"] is True
    assert api.post("schedules/hourly/resume", project="demo").status_code == 200
    assert api.post("schedules/nope/pause", project="demo").status_code == 404
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    r = api.post("backfill", {"start": yesterday, "end": yesterday, "schedule": None}, project="demo")
    assert r.status_code == 202 and r.json()["total"] == 1, r.text

    def done() -> bool:
        b = api.get("schedules", project="demo").json()["backfill"]
        return not b["running"] and b["counts"].get("succeeded") == 1

    assert api.wait_until("demo", done, timeout=120)
    assert api.post("schedules/hourly/remove", project="demo").status_code == 200
    assert api.get("schedules/hourly/slots", project="demo").json()["slots"] == []


def test_changes_answers_when_a_notebook_or_the_config_changes(server: tuple[Api, Path]) -> None:
    api, root = server
    first = api.get("changes", project="demo", timeout=0).json()
    assert first["sources"]
    started = time.monotonic()
    notebook = root / "demo" / "b.ipynb"
    os.utime(notebook, ns=(time.time_ns(), time.time_ns() + 10**9))
    r = api.get("changes", project="demo", since=first["event_id"], sources=first["sources"], timeout=10).json()
    assert r["changed"] is True and r["sources"] != first["sources"]
    assert time.monotonic() - started < 5  # within a poll or two, not at the timeout


def test_compare_answers_or_says_what_it_needs(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, _ = server
    r = api.get("runs/compare", project="demo", a=demo_run["id"], b=demo_run["id"])
    assert r.status_code in (200, 501), r.text
    if r.status_code == 501:
        assert "Project.diff" in r.json()["message"]
    assert api.get("runs/compare", project="demo", a=demo_run["id"]).status_code == 400
