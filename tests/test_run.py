"""Runs through real papermill and real ipykernel kernels, recorded in a real SQLite store."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.errors import KernelNotFoundError, NbflowError

from .conftest import write_notebook

pytestmark = pytest.mark.kernel


def states(summary):
    return {t.task: t.status for t in summary.tasks}


def test_success_keeps_artifact_injects_parameters_and_leaves_source_alone(fixture_project):
    root = fixture_project("succeeds", "params", config='[parameters]\nsample_size = 5\n')
    before = (root / "params.ipynb").read_bytes()
    project = Project(root)
    summary = project.run({"run_date": "2026-02-03"})
    assert summary.ok and states(summary) == {"params": "succeeded", "succeeds": "succeeded"}
    assert (root / "params.ipynb").read_bytes() == before
    artifact = Path(summary.artifacts) / "params.ipynb"
    nb = json.loads(artifact.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1
    src = "".join(injected[0]["source"])
    assert "sample_size = 5" in src and 'run_date = "2026-02-03"' in src and summary.run_id in src
    log = project.logs(summary.run_id, "params").log
    assert "5" in log and "2026-02-03" in log and summary.run_id in log
    run = project.show(summary.run_id).run
    assert run.status == "succeeded" and run.logical_date == "2026-02-03"


def test_error_in_cell_2_is_recorded_with_cell_and_markers(fixture_project):
    root = fixture_project("fails_in_cell_2")
    project = Project(root)
    summary = project.run()
    assert not summary.ok and summary.status == "failed"
    [t] = summary.tasks
    assert (t.status, t.error_cell, t.attempts) == ("failed", 2, 1)
    assert "ValueError: boom in cell 2" in t.error
    attempt = project.logs(summary.run_id, "fails_in_cell_2")
    assert attempt.error_kind == "exception" and "boom in cell 2" in attempt.log
    executed = (Path(summary.artifacts) / "fails_in_cell_2.ipynb").read_text()
    assert "papermill-error-cell-tag" in executed  # papermill's error markers are kept


def test_sys_exit_0_succeeds_and_sys_exit_1_fails(fixture_project):
    project = Project(fixture_project("exits_0", "exits_1"))
    summary = project.run()
    assert states(summary) == {"exits_0": "succeeded", "exits_1": "failed"}
    assert project.logs(summary.run_id, "exits_1").error_kind == "exit"
    assert "should not run" not in project.logs(summary.run_id, "exits_0").log


def test_task_timeout_stops_a_hung_notebook(fixture_project):
    # 6 s: the timeout counts the kernel's start too, which takes seconds on a loaded machine
    project = Project(fixture_project("sleeps_forever", config="[defaults]\ntimeout = 6\n"))
    summary = project.run()
    [t] = summary.tasks
    assert t.status == "failed" and t.error_cell == 1
    assert t.error == "the notebook ran longer than its 6 s timeout" and t.error_cell == 1
    attempt = project.logs(summary.run_id, "sleeps_forever")
    assert attempt.error_kind == "timeout" and attempt.ended_at - attempt.started_at < 18


def test_task_timeout_counts_the_whole_notebook_not_one_cell(tmp_path):
    write_notebook(tmp_path / "many.ipynb", ["import time"] + ["time.sleep(1)"] * 8 + ["open('done', 'w')"])
    (tmp_path / "nbflow.toml").write_text("[defaults]\ntimeout = 4\ncell_timeout = 2\n")
    summary = Project(tmp_path).run()
    [t] = summary.tasks
    assert t.status == "failed" and "4 s timeout" in t.error and not (tmp_path / "done").exists()


def test_cell_timeout(fixture_project):
    project = Project(fixture_project("sleeps_forever", config="[defaults]\ncell_timeout = 2\n"))
    summary = project.run()
    [t] = summary.tasks
    assert t.status == "failed" and t.error == "the cell ran longer than the 2 s cell_timeout" and t.error_cell == 1
    assert project.logs(summary.run_id, "sleeps_forever").error_kind == "timeout"


def test_retry_after_one_failure(fixture_project):
    root = fixture_project("fails_once_then_succeeds", config="[defaults]\nretries = 2\nretry_delay = 0.1\n")
    project = Project(root)
    summary = project.run()
    [t] = summary.tasks
    assert (t.status, t.attempts) == ("succeeded", 2)
    attempts = project.show(summary.run_id).attempts
    assert [(a.number, a.status) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert (Path(summary.artifacts) / "fails_once_then_succeeds.ipynb").exists()
    assert (Path(summary.artifacts) / "fails_once_then_succeeds.attempt-2.ipynb").exists()


def test_dead_kernel_is_retried_then_recorded(fixture_project):
    project = Project(fixture_project("kills_kernel", config="[defaults]\nretries = 1\nretry_delay = 0.1\n"))
    summary = project.run()
    [t] = summary.tasks
    assert (t.status, t.attempts, t.error_cell) == ("failed", 2, 0)
    assert t.error == "the kernel died while running this cell" and t.error_cell == 0
    kinds = [a.error_kind for a in project.show(summary.run_id).attempts]
    assert kinds == ["dead_kernel", "dead_kernel"]


def test_check_failure_stops_downstream_but_not_independent_branches(tmp_path):
    write_notebook(tmp_path / "gate.ipynb", [("rows = 3", []), ('open("ok.txt", "w").write("x")', ["writes:ok.txt"]),
                                             ('assert rows > 10, f"expected more than 10 rows, got {rows}"', ["check"])])
    write_notebook(tmp_path / "after.ipynb", [("pass", ["reads:ok.txt"])])
    write_notebook(tmp_path / "after_after.ipynb", [("pass", ["upstream:after"])])
    write_notebook(tmp_path / "independent.ipynb", ["x = 1"])
    project = Project(tmp_path)
    summary = project.run()
    assert states(summary) == {"gate": "check_failed", "after": "upstream_failed", "after_after": "upstream_failed",
                               "independent": "succeeded"}
    gate = next(t for t in summary.tasks if t.task == "gate")
    assert gate.error_cell == 2 and "expected more than 10 rows, got 3" in gate.error and gate.attempts == 1
    after = next(t for t in summary.tasks if t.task == "after")
    assert "upstream gate check_failed" in after.reason


def test_check_fixture_notebook(fixture_project):
    summary = Project(fixture_project("check_fails", config="[defaults]\nretries = 3\n")).run()
    [t] = summary.tasks
    assert (t.status, t.attempts) == ("check_failed", 1)  # a failed gate is not retried


def test_missing_kernel_fails_before_anything_runs(fixture_project):
    project = Project(fixture_project("succeeds", "missing_kernel"))
    with pytest.raises(KernelNotFoundError) as err:
        project.run()
    msg = str(err.value)
    assert "no-such-kernel-xyz" in msg and "missing_kernel.ipynb" in msg and "python3" in msg and "Fix:" in msg
    assert project.runs() == []


def _chain(root: Path) -> None:
    (root / "input.csv").write_text("a,b\n1,2\n")
    write_notebook(root / "extract.ipynb", [("factor = 2", ["parameters"]),
                                           ("rows = open('input.csv').read().splitlines()", ["reads:input.csv"]),
                                           ("open('mid.csv','w').write('\\n'.join(rows) + f'\\n{factor}')", ["writes:mid.csv"])])
    write_notebook(root / "load.ipynb", [("data = open('mid.csv').read()", ["reads:mid.csv"]),
                                        ("open('out.txt','w').write(str(len(data)))", ["writes:out.txt"])])


def test_incremental_skips_and_reruns_for_the_right_reasons(tmp_path):
    _chain(tmp_path)
    project = Project(tmp_path)
    first = project.run()
    assert states(first) == {"extract": "succeeded", "load": "succeeded"}
    assert {t.task: t.reason for t in first.tasks}["load"] == "never succeeded before"

    second = project.run()
    assert states(second) == {"extract": "skipped", "load": "skipped"}
    assert all(f"run {first.run_id}" in t.reason for t in second.tasks)

    (tmp_path / "input.csv").write_text("a,b\n1,2\n3,4\n")  # edited by hand: its readers must re-run
    third = project.run()
    assert states(third) == {"extract": "succeeded", "load": "succeeded"}
    assert {t.task: t.reason for t in third.tasks}["extract"] == "input input.csv changed"

    fourth = project.run({"factor": 3})
    assert {t.task: (t.status, t.reason) for t in fourth.tasks}["extract"] == ("succeeded", "parameter factor changed")

    (tmp_path / "out.txt").unlink()  # an output removed: its writer re-runs, its input unchanged
    fifth = project.run({"factor": 3})
    assert {t.task: (t.status, t.reason) for t in fifth.tasks} == {
        "extract": ("skipped", f"up to date (same code, parameters and inputs as run {fourth.run_id})"),
        "load": ("succeeded", "output out.txt is missing")}

    nb = json.loads((tmp_path / "load.ipynb").read_text())
    nb["cells"][1]["source"] = "open('out.txt','w').write(str(len(data) * 2))"
    (tmp_path / "load.ipynb").write_text(json.dumps(nb))
    sixth = project.run({"factor": 3})
    assert {t.task: (t.status, t.reason) for t in sixth.tasks}["load"] == ("succeeded", "code changed")

    forced = project.run({"factor": 3}, force=True)
    assert states(forced) == {"extract": "succeeded", "load": "succeeded"}

    plan = project.dry_run({"factor": 4})
    assert [(p.task, p.action, p.reason) for p in plan] == [
        ("extract", "run", "parameter factor changed"), ("load", "run", "upstream extract will run")]
    assert project.runs(limit=100)[0].id == forced.run_id  # the dry run recorded nothing


def test_only_runs_one_task_and_keeps_upstream_cache(tmp_path):
    _chain(tmp_path)
    project = Project(tmp_path)
    project.run()
    only = project.run(only=["load"])
    assert states(only) == {"load": "skipped"}
    with pytest.raises(NbflowError, match="--only lod: no such task"):
        project.run(only=["lod"])


def test_lineage_follows_inputs_recursively(tmp_path):
    _chain(tmp_path)
    project = Project(tmp_path)
    summary = project.run()
    tree = project.lineage(str(tmp_path / "out.txt"))["path"]
    assert tree["path"] == "out.txt" and tree["producer"]["task"] == "load" and tree["producer"]["run_id"] == summary.run_id
    [mid] = tree["inputs"]
    assert mid["path"] == "mid.csv" and mid["producer"]["task"] == "extract"
    [inp] = mid["inputs"]
    assert inp["path"] == "input.csv" and inp["producer"] is None
    task = project.lineage("load")["task"]
    assert [w["path"] for w in task["writes"]] == ["out.txt"]
    with pytest.raises(NbflowError, match="no task has recorded"):
        project.lineage("nowhere.csv")


def test_independent_tasks_run_in_parallel(tmp_path):
    for name in ("a", "b"):
        write_notebook(tmp_path / f"{name}.ipynb", ["import time; time.sleep(2)"])
    project = Project(tmp_path)
    summary = project.run(jobs=2)
    assert summary.ok
    a, b = sorted(project.show(summary.run_id).attempts, key=lambda r: r.started_at)
    assert b.started_at < a.ended_at  # overlapping, not one after the other


def test_resume_reruns_only_what_failed(tmp_path):
    write_notebook(tmp_path / "first.ipynb", [("open('one.txt','w').write('1')", ["writes:one.txt"])])
    write_notebook(tmp_path / "second.ipynb", [("import os\nassert os.path.exists('go.flag'), 'create go.flag'", ["reads:one.txt"])])
    project = Project(tmp_path)
    failed = project.run()
    assert states(failed) == {"first": "succeeded", "second": "failed"}
    (tmp_path / "go.flag").write_text("")
    resumed = project.resume(failed.run_id)
    assert resumed.run_id == failed.run_id and resumed.ok
    assert [(t.task, t.status, t.attempts) for t in resumed.tasks] == [("first", "succeeded", 1), ("second", "succeeded", 2)]
    detail = project.show(failed.run_id)
    assert [(a.task, a.number, a.status) for a in detail.attempts] == [
        ("first", 1, "succeeded"), ("second", 1, "failed"), ("second", 2, "succeeded")]
    assert detail.run.status == "succeeded"
    with pytest.raises(NbflowError, match="nothing left to do"):
        project.resume(failed.run_id)
