"""Pure tests of cache keys: what changes a task's key and what does not, and how a change is explained."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

from nbflow.engine import plan
from nbflow.engine.plan import fingerprint, relevant_parameters, why_changed
from nbflow.model import Policy, Task

from .conftest import write_notebook

TASK = Task(name="clean", path="/p/clean.ipynb", relpath="clean.ipynb", explicit_upstream=(), reads=("data/{run_date}/raw.csv",),
            writes=("data/{run_date}/clean.csv",), check_cells=(), parameters=("min_rows",), parameters_cell=1,
            code_hash="c0de", identifiers=frozenset({"pd", "min_rows", "threshold"}), kernel="python3", policy=Policy(),
            upstream=("ingest",))
PARAMS = {"run_id": "r1", "run_date": "2026-01-01", "min_rows": 10, "threshold": 0.5, "sample_size": 100}
READS = [("data/2026-01-01/raw.csv", "aaa", 3)]
UP = {"ingest": "k-ingest"}


def key(task=TASK, params=PARAMS, reads=READS, up=UP):
    return fingerprint(task, params, reads, up).key


def test_only_parameters_the_task_can_see_count():
    assert relevant_parameters(TASK, PARAMS) == {"min_rows": 10, "run_date": "2026-01-01", "threshold": 0.5}
    assert key(params={**PARAMS, "run_id": "r2"}) == key()  # a new run id alone never defeats the cache
    assert key(params={**PARAMS, "sample_size": 5}) == key()  # used only by another notebook
    assert key(params={**PARAMS, "min_rows": 11}) != key()  # declared
    assert key(params={**PARAMS, "threshold": 1}) != key()  # named in the code
    assert key(params={**PARAMS, "run_date": "2026-01-02"}) != key()  # used in a path


def test_code_inputs_and_upstream_change_the_key():
    assert key(task=replace(TASK, code_hash="other")) != key()
    assert key(reads=[("data/2026-01-01/raw.csv", "bbb", 3)]) != key()
    assert key(reads=READS + [("data/extra.csv", "ccc", 1)]) != key()
    assert key(up={"ingest": "k2"}) != key()
    assert key() == key()


def test_why_changed_explains_the_first_difference():
    old = __import__("json").loads(fingerprint(TASK, PARAMS, READS, UP).as_json())
    assert why_changed(None, fingerprint(TASK, PARAMS, READS, UP)) == "never succeeded before"
    assert why_changed(old, fingerprint(replace(TASK, code_hash="x"), PARAMS, READS, UP)) == "code changed"
    assert why_changed(old, fingerprint(TASK, {**PARAMS, "min_rows": 3}, READS, UP)) == "parameter min_rows changed"
    assert why_changed(old, fingerprint(TASK, PARAMS, [("data/2026-01-01/raw.csv", "z", 1)], UP)) == \
        "input data/2026-01-01/raw.csv changed"
    assert why_changed(old, fingerprint(TASK, PARAMS, READS, {"ingest": "new"})) == "upstream ingest changed"


def test_a_no_op_run_never_imports_the_executor_stack(tmp_path):
    """Nothing to run: no executor stack, no kernel machinery, no sqlite-utils (a no-op run must stay well under 0.5 s)."""
    write_notebook(tmp_path / "a.ipynb", [("open('a.txt', 'w').write('1')", ["writes:a.txt"])])
    heavy = "('papermill', 'nbformat', 'nbclient', 'jupyter_client', 'sqlite_utils')"
    code = ("import sys; from nbflow import Project; s = Project(sys.argv[1]).run(); "
            f"print(s.tasks[0].status, sorted(m for m in {heavy} if m in sys.modules))")
    first = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert first.stdout.split()[0] == "succeeded"
    again = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "skipped []"


def test_a_run_hashes_a_file_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    calls = []
    real = plan.file_hash
    monkeypatch.setattr(plan, "file_hash", lambda p: calls.append(p) or real(p))
    hashes = plan.HashCache()
    first = hashes(str(path))
    assert hashes(str(path)) == first == real(str(path)) and len(calls) == 1  # written by one task, read by the next
    path.write_text("a,b\n1,2\n3,4\n")
    assert hashes(str(path)) == real(str(path)) != first and len(calls) == 2  # changed: hashed again
