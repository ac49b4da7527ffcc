"""kill -9 of the runner at five precise points, each followed by `nbflow resume`: exactly one successful attempt
per task, no succeeded task run again, a consistent store, and no kernel left behind."""
from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from nbflow import Project

from ..conftest import write_notebook
from .conftest import no_process_left, runner
from .invariants import broken


def chain(root: Path) -> Path:
    """a -> b -> c, each writing a file the next one reads; b signals when it is in the middle of its long cell."""
    write_notebook(root / "a.ipynb", [("n = 3", ["parameters"]), ("open('a.txt', 'w').write('a' * n)", ["writes:a.txt"])])
    write_notebook(root / "b.ipynb", [
        ("import time\ntext = open('a.txt').read()", ["reads:a.txt"]),
        "open('mid-cell.flag', 'w').close()\ntime.sleep(1.5)",
        ("open('b.txt', 'w').write(text + 'b')", ["writes:b.txt"]),
    ])
    write_notebook(root / "c.ipynb", [("open('c.txt', 'w').write(open('b.txt').read() + 'c')", ["reads:b.txt", "writes:c.txt"])])
    (root / "nbflow.toml").write_text("jobs = 1\n")
    return root


# (point, how-many-th time it is reached): each lands while `b` (the second task) is under way
POINTS = [("kernel_starting", 2), ("mid_cell", 1), ("writing_notebook", 2), ("store_transaction", 2), ("hashing_outputs", 2)]


@pytest.mark.parametrize("point, n", POINTS, ids=[p for p, _ in POINTS])
def test_kill_at_a_point_then_resume(tmp_path: Path, point: str, n: int) -> None:
    root = chain(tmp_path / "project")
    killed = runner(root, point, "run", n=n)
    out, _ = killed.communicate(timeout=180)
    assert killed.returncode == -9, out
    no_process_left(root)
    store = root / ".nbflow" / "nbflow.db"
    assert broken(store) == {}
    with Project(root) as project:
        crashed = project.show()
        assert crashed.run.status == "crashed" and crashed.run.id
        before = {a.task: a.status for a in crashed.attempts}
    resumed = subprocess.run([*runner_args(), "resume", crashed.run.id], cwd=root, capture_output=True, text=True, timeout=180,
                             check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    no_process_left(root)
    assert broken(store) == {}
    with Project(root) as project:
        detail = project.show(crashed.run.id)
    assert detail.run.status == "succeeded"
    ok = [(a.task, a.number) for a in detail.attempts if a.status == "succeeded"]
    assert sorted(t for t, _ in ok) == ["a", "b", "c"], ok  # exactly one successful attempt per task
    for task, status in before.items():
        if status == "succeeded":  # a task that had succeeded before the kill did not run again
            assert [a.number for a in detail.attempts if a.task == task] == [1], (task, detail.attempts)
    assert (root / "c.txt").read_text() == "aaabc"
    conn = sqlite3.connect(store)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    shown = json.loads(subprocess.run([*runner_args(), "show", "--json"], cwd=root, capture_output=True, text=True,
                                      timeout=60, check=True).stdout)
    assert shown["run"]["status"] == "succeeded"


def runner_args() -> list[str]:
    import sys

    return [sys.executable, "-m", "nbflow"]
