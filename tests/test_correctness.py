"""Bugs found by trying nbflow as a new user would (issue 10): each test failed before its fix."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.errors import NotebookError

from .conftest import wait_for, write_notebook


def nbflow(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow", *args], check=False, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def _pipeline(root: Path) -> Path:
    write_notebook(root / "a.ipynb", [("open('a.txt', 'w').write('a')", ["writes:a.txt"])])
    write_notebook(root / "b.ipynb", [("assert open('a.txt').read() == 'a'", ["reads:a.txt"])])
    return root


# 2: Project.run() inside a notebook, where an event loop is already running

@pytest.mark.kernel
def test_project_run_works_inside_a_notebook(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    project = _pipeline(tmp_path / "project")
    driver = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"from nbflow import Project\nsummary = Project({str(project)!r}).run()\n"
        "print(summary.status, [str(t.status) for t in summary.tasks])")])
    driver.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(driver, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = driver.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    assert "".join(o.get("text", "") for o in outputs).strip() == "succeeded ['succeeded', 'succeeded']"


# 10: a notebook that drives nbflow is not run as a task of its own pipeline

@pytest.mark.kernel
def test_a_task_that_runs_its_own_project_is_refused(tmp_path: Path) -> None:
    _pipeline(tmp_path)
    write_notebook(tmp_path / "driver.ipynb", [("from nbflow import Project\nProject('.').run()", ["upstream:b"])])
    summary = Project(tmp_path).run()
    driver = next(t for t in summary.tasks if t.task == "driver")
    assert driver.status == "failed" and "ConflictError" in (driver.error or "")
    assert "task 'driver'" in driver.error and "exclude" in driver.error
    assert [t.status for t in summary.tasks if t.task != "driver"] == ["succeeded", "succeeded"]  # ran once, not twice


def test_untitled_and_checkpoint_notebooks_are_not_tasks_and_loose_ones_get_a_hint(tmp_path: Path) -> None:
    _pipeline(tmp_path)
    write_notebook(tmp_path / "Untitled.ipynb", ["from nbflow import Project\nProject('.').run()"])
    write_notebook(tmp_path / "Untitled1.ipynb", ["1"])
    write_notebook(tmp_path / "b-checkpoint.ipynb", ["1"])
    write_notebook(tmp_path / "scratch.ipynb", ["x = 1"])
    assert sorted(Project(tmp_path).compile().tasks) == ["a", "b", "scratch"]
    out = nbflow("compile", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "no nbflow tags and no dependencies: scratch.ipynb" in out.stdout and "exclude" in out.stdout


# 6: named errors instead of AttributeErrors, one line instead of tracebacks, no global logging changes

@pytest.mark.parametrize("mutate, expected", [
    (lambda nb: nb["cells"][1].update(metadata=None), 'cell 2: the cell\'s "metadata" is null'),
    (lambda nb: nb["cells"][0]["metadata"].update(tags="parameters"), 'cell 1: the cell\'s "tags" is the string "parameters"'),
    (lambda nb: nb["metadata"].update(kernelspec="python3"), '"kernelspec" in the notebook\'s metadata is the string'),
])
def test_malformed_notebook_structure_is_a_named_error(tmp_path: Path, mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    path = write_notebook(tmp_path / "bad.ipynb", [("n = 1", ["parameters"]), "print(n)"])
    nb = json.loads(path.read_text())
    mutate(nb)
    path.write_text(json.dumps(nb))
    with pytest.raises(NotebookError) as info:
        Project(tmp_path).compile()
    assert expected in str(info.value) and "bad.ipynb" in str(info.value) and "Fix:" in str(info.value)
    out = nbflow("compile", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr and expected in out.stderr.replace("\n", " ")


def test_an_os_error_in_a_command_is_one_line_and_exit_2(tmp_path: Path) -> None:
    _pipeline(tmp_path)
    out = nbflow("graph", "-o", str(tmp_path / "missing" / "dir" / "x.dot"), cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: No such file or directory") and "missing/dir/x.dot" in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 2


def test_a_bug_in_nbflow_is_one_line_with_the_log_that_keeps_its_traceback(tmp_path: Path) -> None:
    code = ("import nbflow.cli, nbflow.project\n"
            "nbflow.project.Project.compile = lambda self: {}['boom']\n"
            "nbflow.cli.main(['compile'])\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "COLUMNS": "300"})
    assert out.returncode == 2 and "Traceback" not in out.stderr + out.stdout
    assert "nbflow failed unexpectedly (KeyError: 'boom')" in out.stderr and "bug in nbflow" in out.stderr
    kept = (tmp_path / "state" / "nbflow" / "nbflow.log").read_text()
    assert "Traceback" in kept and "KeyError: 'boom'" in kept


@pytest.mark.kernel
def test_a_run_leaves_logging_and_warning_filters_as_they_were(tmp_path: Path) -> None:
    write_notebook(tmp_path / "plain.ipynb", ["print('no parameters cell')"])  # papermill would warn about that
    filters = list(warnings.filters)
    levels = {name: logging.getLogger(name).level for name in ("papermill", "nbclient", "traitlets", "")}
    assert Project(tmp_path).run().ok
    assert list(warnings.filters) == filters
    assert {name: logging.getLogger(name).level for name in levels} == levels


@pytest.mark.kernel
def test_an_internal_failure_keeps_its_traceback_in_the_logger_and_the_attempt(tmp_path: Path, caplog, monkeypatch) -> None:
    from nbflow.executors import attempt

    def broken(path: str) -> None:
        raise RuntimeError("nbflow bug")

    monkeypatch.setattr(attempt, "_load", broken)
    write_notebook(tmp_path / "a.ipynb", ["1"])
    with caplog.at_level(logging.ERROR, logger="nbflow"):
        summary = Project(tmp_path).run()
    [task] = summary.tasks
    assert task.status == "failed" and task.error == "nbflow failed: RuntimeError: nbflow bug"
    assert any(r.name.startswith("nbflow") and r.exc_info for r in caplog.records)
    log = Project(tmp_path).logs(summary.run_id, "a").log or ""
    assert "Traceback" in log and "RuntimeError: nbflow bug" in log


# 7: looking creates nothing; a killed scheduler shows as stopped at once

def test_read_only_commands_create_no_store(tmp_path: Path) -> None:
    _pipeline(tmp_path)
    for args in (("schedule", "list"), ("runs",), ("show",), ("logs", "x", "a"), ("lineage", "a.txt"), ("doctor",),
                 ("schedule", "slots"), ("run", "--dry-run")):
        out = nbflow(*args, cwd=tmp_path)
        assert "Traceback" not in out.stderr, (args, out.stderr)
        assert not (tmp_path / ".nbflow").exists(), f"`nbflow {' '.join(args)}` created the store"
    assert "no runs yet" in nbflow("show", cwd=tmp_path).stderr


def test_schedule_list_says_a_killed_scheduler_is_gone_at_once(tmp_path: Path) -> None:
    _pipeline(tmp_path)
    (tmp_path / "nbflow.toml").write_text('[schedules.nightly]\ncron = "0 2 * * *"\n')
    daemon = subprocess.Popen([sys.executable, "-m", "nbflow", "scheduler"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        def status() -> dict[str, object]:
            return json.loads(nbflow("schedule", "list", "--json", cwd=tmp_path).stdout)["scheduler"]

        wait_for(lambda: status()["running"], 60, "the scheduler to hold the lease")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        after = status()
        assert after["running"] is False and after["holder"]["heartbeat_age"] < 15  # gone at once, not after 15 s
        assert "not running" in nbflow("schedule", "list", cwd=tmp_path).stdout
    finally:
        if daemon.poll() is None:
            daemon.kill()
