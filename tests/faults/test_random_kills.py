"""30 rounds of kill -9 at a random moment of a 10-task run, resuming after each: the run ends complete and the store
stays consistent after every round (the invariants are SQL: tests/faults/invariants.py)."""
from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from nbflow import Project

from ..conftest import write_notebook
from .conftest import no_process_left, runner
from .invariants import broken

ROUNDS = 30


def chain_of_ten(root: Path) -> Path:
    for i in range(10):
        cells = [("import time\ntime.sleep(0.15)", [f"reads:t{i - 1}.txt"] if i else [])]
        cells.append((f"open('t{i}.txt', 'w').write('{i}' + (open('t{i - 1}.txt').read() if {i} else ''))", [f"writes:t{i}.txt"]))
        write_notebook(root / f"t{i}.ipynb", cells)
    (root / "nbflow.toml").write_text("jobs = 2\n")
    return root


def test_thirty_random_kills_then_the_run_completes(tmp_path: Path) -> None:
    root = chain_of_ten(tmp_path / "project")
    store = root / ".nbflow" / "nbflow.db"
    seed = int(os.environ.get("NBFLOW_FAULT_SEED", time.time()))
    rng = random.Random(seed)
    runs: list[str] = []
    for round_ in range(ROUNDS):
        with Project(root) as project:
            latest = project.runs(limit=1)
        unfinished = latest and latest[0].status in ("crashed", "cancelled", "failed")
        proc = runner(root, None, *(("resume", latest[0].id) if unfinished else ("run", "--force")))
        time.sleep(rng.uniform(0.3, 2.5))  # the fault: a kill at a random moment (this sleep is the random moment)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        no_process_left(root)
        assert broken(store) == {}, f"round {round_} (seed {seed}): {out}"
        with Project(root) as project:
            runs = [r.id for r in project.runs(limit=100)]
    final = runner(root, None, "resume", runs[0])
    out, _ = final.communicate(timeout=240)
    with Project(root) as project:
        detail = project.show(runs[0])
        assert detail.run.status == "succeeded" or "nothing left to do" in out, out
        for run_id in runs:
            shown = project.show(run_id)
            assert shown.run.status in ("succeeded", "crashed"), (seed, shown.run)
        assert project.show(runs[0]).run.status == "succeeded", seed
        done = project.show(runs[0])
        assert sorted(a.task for a in done.attempts if a.status == "succeeded") == [f"t{i}" for i in range(10)]
    assert (root / "t9.txt").read_text() == "9876543210"
    no_process_left(root)
    assert broken(store) == {}, f"seed {seed}"
