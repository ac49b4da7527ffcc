"""The `nbflow` command as a user runs it: real processes, exit codes and messages."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, write_notebook


def nbflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow", *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=240,
                          env={**__import__("os").environ, "COLUMNS": "200"})


def _commands() -> list[str]:
    from nbflow.cli import main

    return sorted(main.commands)


def test_every_command_has_help_and_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for name in _commands():
        from nbflow.cli import main

        assert (main.commands[name].help or "").strip(), f"`nbflow {name}` has no help text"
        assert f"nbflow {name}" in readme, f"`nbflow {name}` is not documented in README.md"


def test_compile_prints_tasks_edges_and_order(tmp_path):
    write_notebook(tmp_path / "a.ipynb", [("pass", ["writes:a.csv"])])
    write_notebook(tmp_path / "b.ipynb", [("pass", ["reads:a.csv"])])
    out = nbflow("compile", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "2 tasks, 1 edges" in out.stdout and "a -> b" in out.stdout and "order  a -> b" in out.stdout
    js = nbflow("compile", "--json", cwd=tmp_path)
    assert '"order": [' in js.stdout


def test_compile_error_exit_2_names_notebook_cell_and_fix(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["pass"])
    write_notebook(tmp_path / "b.ipynb", ["x = 1", ("pass", ["upstream:aa"])])
    out = nbflow("compile", cwd=tmp_path)
    assert out.returncode == 2
    assert "b.ipynb, cell 2: tag 'upstream:aa' names no task" in out.stderr and "upstream:a" in out.stderr
    assert "Traceback" not in out.stderr


def test_graph_writes_dot_and_svg(tmp_path):
    write_notebook(tmp_path / "a.ipynb", [("pass", ["writes:a.csv"])])
    write_notebook(tmp_path / "b.ipynb", [("pass", ["reads:a.csv"])])
    assert nbflow("graph", "-o", "dag.dot", cwd=tmp_path).returncode == 0
    assert re.search(r'"?a"?\s*->\s*"?b"?', (tmp_path / "dag.dot").read_text())
    svg = nbflow("graph", "-o", "dag.svg", cwd=tmp_path)
    assert svg.returncode == 0, svg.stderr
    assert (tmp_path / "dag.svg").read_text().lstrip().startswith("<?xml")
    bad = nbflow("graph", "-o", "dag", cwd=tmp_path)
    assert bad.returncode == 2 and "*.png, *.pdf, *.svg or *.dot" in bad.stderr


def test_svg_without_graphviz_says_how_to_get_it(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["pass"])
    code = ("import os, sys; os.environ['PATH'] = ''; sys.argv = ['nbflow', 'graph', '-o', 'x.svg']; "
            "from nbflow.cli import main; main()")
    out = subprocess.run([sys.executable, "-c", code], check=False, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2 and "apt-get install graphviz" in out.stderr and "-o dag.dot" in out.stderr


@pytest.mark.kernel
def test_run_exit_codes_summary_show_logs_and_runs(tmp_path):
    write_notebook(tmp_path / "good.ipynb", [("n = 1", ["parameters"]), "print('hello', n)"])
    ok = nbflow("run", "-p", "n=5", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "IPKernelApp" not in ok.stdout + ok.stderr and "Passed unknown parameter" not in ok.stderr  # kernel noise stays in the log
    run_id = re.search(r"run (\S+): succeeded", ok.stdout).group(1)
    assert "nbflow-runs/" + run_id in ok.stdout
    logs = nbflow("logs", run_id, "good", cwd=tmp_path)
    assert logs.returncode == 0 and "hello 5" in logs.stdout
    show = nbflow("show", run_id, cwd=tmp_path)
    assert "succeeded" in show.stdout and '"n": 5' in show.stdout
    assert run_id in nbflow("runs", cwd=tmp_path).stdout
    assert nbflow("graph", "-o", "states.dot", "--run", run_id, cwd=tmp_path).returncode == 0
    assert "[succeeded]" in (tmp_path / "states.dot").read_text() and "#a5d6a7" in (tmp_path / "states.dot").read_text()

    write_notebook(tmp_path / "bad.ipynb", ["#md x", "y = 1", "raise ValueError('boom in cell 2')"])
    bad = nbflow("run", "-p", "n=5", cwd=tmp_path)
    assert bad.returncode == 1
    assert "boom in cell 2" in bad.stdout and "cell 2" in bad.stdout
    skipped = re.search(r"good\s+(\w+)\s+-", bad.stdout)
    assert skipped and skipped.group(1) == "skipped"

    missing = nbflow("logs", run_id, "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no attempt of task 'nope'" in missing.stderr
    unknown_run = nbflow("show", "zzzz", cwd=tmp_path)
    assert unknown_run.returncode == 2 and "nbflow runs" in unknown_run.stderr


@pytest.mark.kernel
def test_unknown_parameter_warns_and_dry_run_records_nothing(tmp_path):
    write_notebook(tmp_path / "a.ipynb", [("sample_size = 1", ["parameters"]), "pass"])
    out = nbflow("run", "--dry-run", "-p", "smaple_size=3", cwd=tmp_path)
    assert out.returncode == 0
    assert "parameter 'smaple_size' is not declared" in out.stderr and "a.ipynb" in out.stderr
    assert "never succeeded before" in out.stdout
    assert "no runs yet" in nbflow("runs", cwd=tmp_path).stdout


def test_empty_project_says_where_it_looked(tmp_path):
    out = nbflow("run", cwd=tmp_path)
    assert out.returncode == 2 and "no notebooks to run under" in out.stderr and "nbflow.toml" in out.stderr


def test_bad_param_syntax(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["pass"])
    out = nbflow("run", "-p", "novalue", cwd=tmp_path)
    assert out.returncode == 2 and "key=value" in out.stderr


def test_missing_kernel_exit_2_before_running(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["pass"], kernel="no-such-kernel")
    out = nbflow("run", cwd=tmp_path)
    assert out.returncode == 2 and "kernel 'no-such-kernel' is not installed" in out.stderr


def test_newer_store_is_refused_cleanly(tmp_path):
    import sqlite3

    write_notebook(tmp_path / "a.ipynb", ["pass"])
    (tmp_path / ".nbflow").mkdir()
    db = sqlite3.connect(tmp_path / ".nbflow" / "nbflow.db")
    db.execute("PRAGMA user_version = 999")
    db.close()
    out = nbflow("runs", cwd=tmp_path)
    assert out.returncode == 2 and "newer nbflow" in out.stderr and "Traceback" not in out.stderr


def test_doctor_reports_sqlite_and_kernels(tmp_path):
    import sqlite3

    out = nbflow("doctor", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    import json

    info = json.loads(out.stdout)
    assert info["versions"]["sqlite"] == sqlite3.sqlite_version and "python3" in info["kernels"]
    assert info["schema_version"] is None and not (tmp_path / ".nbflow").exists()  # looking creates no store
    affected = tuple(int(x) for x in sqlite3.sqlite_version.split(".")) <= (3, 51, 2)
    assert any("WAL-reset bug" in w for w in info["warnings"]) == affected
