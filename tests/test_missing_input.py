"""A read that names no file: a warning at compile and dry-run, and a task that fails at once (no kernel) when it runs."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow import Project

from .conftest import write_notebook
from .test_engine import FakeExecutor, run_with


def nbflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow", *args], check=False, cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "COLUMNS": "1000"})


def _typo_project(root: Path) -> None:
    (root / "nbflow.toml").write_text('notebooks = "notebooks"\n')
    write_notebook(root / "notebooks" / "features.ipynb", [("pass", ["writes:data/feat_behavior.csv"])])
    write_notebook(root / "notebooks" / "model.ipynb", ["#md Model", "import pandas",
                                                        ("pass", ["reads:data/feat_behaviour.csv"])])


def test_compile_warns_about_a_read_nobody_writes_and_suggests_the_written_path(tmp_path):
    _typo_project(tmp_path)
    out = nbflow("compile", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert ("warning: notebooks/model.ipynb, cell 3: reads:data/feat_behaviour.csv names a file that no task writes "
            "and that does not exist. Fix: did you mean 'data/feat_behavior.csv'? (notebooks/features.ipynb writes it)"
            ) in out.stderr
    assert "2 tasks, 0 edges" in out.stdout  # the typo drops the edge: that is what the warning is for
    (tmp_path / "notebooks" / "data").mkdir()
    (tmp_path / "notebooks" / "data" / "feat_behaviour.csv").write_text("an input made by hand")
    again = nbflow("compile", cwd=tmp_path)
    assert again.returncode == 0 and "warning" not in again.stderr


def test_a_forgotten_writes_tag_is_warned_without_a_guess(tmp_path):
    write_notebook(tmp_path / "ingest.ipynb", ["open('raw.csv', 'w').write('1')"])
    write_notebook(tmp_path / "clean.ipynb", [("pass", ["upstream:ingest", "reads:raw.csv", "writes:clean_table.parquet"])])
    out = nbflow("compile", cwd=tmp_path)
    assert out.returncode == 0
    assert ("warning: clean.ipynb, cell 1: reads:raw.csv names a file that no task writes and that does not exist. "
            "Fix: correct the path, add a writes: tag for it to the notebook that makes it, or create it before the run"
            ) in out.stderr


def test_placeholders_are_checked_with_the_defaults_at_compile_and_the_run_parameters_in_dry_run(tmp_path):
    (tmp_path / "nbflow.toml").write_text('[parameters]\nregion = "eu"\n')
    write_notebook(tmp_path / "load.ipynb", [("run_date = '2020-01-01'; kind = 'daily'; region = 'xx'", ["parameters"]),
                                             ("pass", ["reads:in/{region}/{kind}/{run_date}.csv"])])
    today = dt.date.today().isoformat()
    out = nbflow("compile", cwd=tmp_path)
    assert out.returncode == 0
    assert (f"reads:in/{{region}}/{{kind}}/{{run_date}}.csv names a file that no task writes and that does not exist "
            f"(in/eu/daily/{today}.csv, with the defaults a run would use: kind=daily, region=eu, run_date={today})"
            ) in out.stderr
    dry = nbflow("run", "--dry-run", "-p", "region=us", "-p", "kind=daily", "-p", "run_date=2026-03-01", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "(in/us/daily/2026-03-01.csv, with this run's parameters: kind=daily, region=us, run_date=2026-03-01)" in dry.stderr
    assert "input in/us/daily/2026-03-01.csv is missing: it will fail at once (missing_input)" in dry.stdout
    (tmp_path / "in" / "us" / "daily").mkdir(parents=True)
    (tmp_path / "in" / "us" / "daily" / "2026-03-01.csv").write_text("x")
    fine = nbflow("run", "--dry-run", "-p", "region=us", "-p", "kind=daily", "-p", "run_date=2026-03-01", cwd=tmp_path)
    assert "warning" not in fine.stderr and "missing_input" not in fine.stdout


def test_a_missing_input_fails_the_task_at_once_without_its_kernel(tmp_path):
    """b's kernel was asked for while a ran; b's input is not there when it is ready: failed, its kernel released."""
    write_notebook(tmp_path / "a.ipynb", [("pass", ["writes:data"])])
    write_notebook(tmp_path / "b.ipynb", ["x = 1", ("pass", ["reads:data/y.csv", "retries:3"])])
    write_notebook(tmp_path / "c.ipynb", [("pass", ["upstream:b"])])
    project = Project(tmp_path)
    ex = FakeExecutor(tmp_path, outputs={"a": ["data/x.csv"]})
    summary = run_with(project, ex)
    states = {t.task: t.status for t in summary.tasks}
    assert states == {"a": "succeeded", "b": "failed", "c": "upstream_failed"} and not summary.ok
    assert [t for t, _ in ex.calls] == ["a"]  # b never submitted, never retried
    assert "b" in ex.wanted and "b" in ex.unwanted and "c" in ex.unwanted
    [attempt] = project.store.attempts(summary.run_id, "b")
    assert attempt.error_kind == "missing_input" and attempt.error_cell == 1 and attempt.artifact is None
    assert attempt.error == ("b.ipynb, cell 2: reads:data/y.csv names no file: it is written by 'a' (a.ipynb), which has "
                                "not written it yet. Fix: run a first (`nbflow run --to b`), or check that the path matches "
                                "what it writes")
    b = next(t for t in summary.tasks if t.task == "b")
    assert b.error == attempt.error and b.error_cell == 1 and b.attempts == 1


@pytest.mark.kernel
def test_a_real_run_with_a_typo_fails_the_reader_with_the_warnings_message(tmp_path, monkeypatch):
    import nbflow.executors.kernels as kernels

    started: list[str] = []
    start = kernels.start

    async def counting_start(launch, *args, **kwargs):  # type: ignore[no-untyped-def]
        started.append(dict(launch.env)["NBFLOW_TASK"])
        return await start(launch, *args, **kwargs)

    monkeypatch.setattr(kernels, "start", counting_start)
    write_notebook(tmp_path / "features.ipynb", [("open('feat_behavior.csv', 'w').write('1')", ["writes:feat_behavior.csv"])])
    write_notebook(tmp_path / "model.ipynb", [("open('feat_behaviour.csv').read()", ["reads:feat_behaviour.csv"])])
    write_notebook(tmp_path / "report.ipynb", [("pass", ["upstream:model"])])
    project = Project(tmp_path)
    [warning] = project.input_warnings(project.compile())
    summary = project.run()
    assert {t.task: t.status for t in summary.tasks} == {"features": "succeeded", "model": "failed", "report": "upstream_failed"}
    [attempt] = project.store.attempts(summary.run_id, "model")
    assert attempt.status == "failed" and attempt.error_kind == "missing_input" and attempt.error == warning
    assert "did you mean 'feat_behavior.csv'?" in warning
    assert not (tmp_path / "nbflow-runs" / summary.run_id / "model.ipynb").exists()
    assert started == ["features"]  # a kernel for the task that ran, none for the one that could not
