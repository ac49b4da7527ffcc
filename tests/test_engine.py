"""The run loop with a fake executor (no kernels): ordering, retries, failure isolation, directories and globs."""
from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.engine.retry import backoff
from nbflow.engine.run import Engine, RunPlan
from nbflow.errors import ConflictError
from nbflow.executors.base import AttemptResult, AttemptSpec, KernelLaunch
from nbflow.model import Policy

from .conftest import write_notebook


class FakeExecutor:
    """Pretends to run notebooks: writes the declared outputs, or fails / raises for chosen tasks."""

    def __init__(self, root: Path, fail: dict[str, int] | None = None, raise_for: set[str] | None = None,
                 outputs: dict[str, list[str]] | None = None) -> None:
        self.root, self.fail, self.raise_for, self.outputs = root, dict(fail or {}), raise_for or set(), outputs or {}
        self.calls: list[tuple[str, int]] = []
        self.envs: dict[str, dict[str, str]] = {}  # task -> its kernel's environment
        self.wanted: list[str] = []
        self.unwanted: list[str] = []

    async def submit(self, spec: AttemptSpec, on_cell=None) -> AttemptResult:  # type: ignore[no-untyped-def]
        self.calls.append((spec.task, spec.number))
        self.envs[spec.task] = dict(spec.launch.env)
        await asyncio.sleep(0.01)
        if spec.task in self.raise_for:
            raise RuntimeError("worker exploded")
        now = time.time()
        if self.fail.get(spec.task, 0) >= spec.number:
            return AttemptResult("failed", now, now, error_kind="exception", error="ValueError: no", error_cell=1, retriable=True)
        for rel in self.outputs.get(spec.task, []):
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{spec.task} {spec.number} {spec.parameters.get('v')}")
        return AttemptResult("succeeded", now, now)

    def want(self, launch: KernelLaunch) -> None:
        self.wanted.append(dict(launch.env)["NBFLOW_TASK"])

    def unwant(self, launch: KernelLaunch) -> None:
        self.unwanted.append(dict(launch.env)["NBFLOW_TASK"])

    async def close(self, cancel: bool = False) -> None:
        pass


def run_with(project: Project, executor: FakeExecutor, params: dict | None = None, store=None):
    pipeline = project.compile()
    run_id = f"r{random.randrange(10**9)}"
    parameters = project.run_parameters(params, run_id, None)
    store = store or project.store
    store.create_run(run_id, trigger="manual", logical_date=parameters["run_date"],
                     parameters=parameters, selection={}, tasks=list(pipeline.order))
    engine = Engine(project.config, pipeline, store, executor, rng=random.Random(1))
    return asyncio.run(engine.execute(RunPlan(run_id, parameters, pipeline.order, jobs=2)))


def test_retries_with_backoff_and_upstream_failure(tmp_path):
    write_notebook(tmp_path / "a.ipynb", [("pass", ["writes:a.txt", "retries:2"])])
    write_notebook(tmp_path / "b.ipynb", [("pass", ["reads:a.txt"])])
    write_notebook(tmp_path / "c.ipynb", [("pass", ["retries:1"])])
    (tmp_path / "nbflow.toml").write_text("[defaults]\nretry_delay = 0.01\n")
    ex = FakeExecutor(tmp_path, fail={"a": 2, "c": 5}, outputs={"a": ["a.txt"]})
    summary = run_with(Project(tmp_path), ex)
    assert {t.task: (t.status, t.attempts) for t in summary.tasks} == {
        "a": ("succeeded", 3), "b": ("succeeded", 1), "c": ("failed", 2)}
    assert ex.calls.index(("b", 1)) > ex.calls.index(("a", 3))


def test_gpus_are_hidden_from_tasks_that_ask_for_none_only_where_some_task_asks(tmp_path):
    """A GPU id granted to a `gpus:` task is its alone; a pipeline without `gpus:` leaves the environment as it is."""
    alone, mixed = tmp_path / "alone", tmp_path / "mixed"
    for folder in (alone, mixed):
        write_notebook(folder / "plain.ipynb", ["pass"])
    ex = FakeExecutor(alone)
    assert run_with(Project(alone), ex).ok
    assert "CUDA_VISIBLE_DEVICES" not in ex.envs["plain"]
    write_notebook(mixed / "train.ipynb", [("pass", ["gpus:1"])])
    ex = FakeExecutor(mixed)
    assert run_with(Project(mixed), ex).ok
    assert ex.envs["plain"]["CUDA_VISIBLE_DEVICES"] == "" and "CUDA_VISIBLE_DEVICES" in ex.envs["train"]


def test_an_exploding_executor_fails_one_task_not_the_run(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["pass"])
    write_notebook(tmp_path / "b.ipynb", ["pass"])
    project = Project(tmp_path)
    summary = run_with(project, FakeExecutor(tmp_path, raise_for={"a"}))
    assert {t.task: t.status for t in summary.tasks} == {"a": "failed", "b": "succeeded"}
    [attempt] = project.store.attempts(summary.run_id, "a")
    assert attempt.status == "failed" and attempt.error_kind == "internal" and "worker exploded" in attempt.error


def test_a_store_error_in_one_task_is_recorded_on_that_task(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["pass"])
    write_notebook(tmp_path / "b.ipynb", ["pass"])
    project = Project(tmp_path)

    class FlakyStore(type(project.store)):  # a fake for this unit test only
        def last_success(self, task, cache_key):
            if task == "a":
                raise OSError("disk on fire")
            return super().last_success(task, cache_key)

    store = FlakyStore(project.config.store)
    summary = run_with(project, FakeExecutor(tmp_path), store=store)
    a = next(t for t in summary.tasks if t.task == "a")
    assert a.status == "failed" and "disk on fire" in a.error
    assert {t.task: t.status for t in summary.tasks}["b"] == "succeeded"


def test_folders_and_globs_are_expanded_for_hashing_and_lineage(tmp_path):
    write_notebook(tmp_path / "make.ipynb", [("pass", ["writes:model/", "writes:parts/*.csv"])])
    write_notebook(tmp_path / "use.ipynb", [("pass", ["reads:model", "reads:parts/*.csv"])])
    project = Project(tmp_path)
    outputs = {"make": ["model/weights.bin", "model/config.json", "parts/1.csv", "parts/2.csv"]}
    first = run_with(project, FakeExecutor(tmp_path, outputs=outputs))
    assert first.ok
    use = project.store.task_lineage("use")
    assert sorted(r["path"] for r in use["reads"]) == ["model/config.json", "model/weights.bin", "parts/1.csv", "parts/2.csv"]
    assert run_with(project, FakeExecutor(tmp_path, outputs=outputs)).tasks[1].status == "skipped"
    (tmp_path / "model" / "config.json").write_text("edited")
    again = run_with(project, FakeExecutor(tmp_path, outputs=outputs))
    assert [(t.task, t.status) for t in again.tasks] == [("make", "succeeded"), ("use", "skipped")]  # make restored it
    os.remove(tmp_path / "parts" / "2.csv")
    (tmp_path / "parts" / "3.csv").write_text("new")
    third = run_with(project, FakeExecutor(tmp_path, outputs={"make": ["model/weights.bin"]}))
    assert {t.task: (t.status, t.reason) for t in third.tasks} == {
        "make": ("succeeded", "output parts/2.csv is missing"), "use": ("succeeded", "inputs changed (parts/2.csv)")}
    assert sorted(r["path"] for r in project.store.task_lineage("use")["reads"]) == [
        "model/config.json", "model/weights.bin", "parts/1.csv", "parts/3.csv"]


def test_missing_declared_output_fails_the_task(tmp_path):
    write_notebook(tmp_path / "a.ipynb", [("pass", ["writes:out.csv"])])
    project = Project(tmp_path)
    summary = run_with(project, FakeExecutor(tmp_path))
    [t] = summary.tasks
    assert t.status == "failed" and "declares writes:out.csv but did not write it" in t.error


def test_backoff_grows_is_capped_and_jittered():
    policy = Policy(retry_delay=1.0, retry_max_delay=5.0)
    rng = random.Random(0)
    delays = [backoff(policy, n, rng) for n in range(1, 7)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0
    assert all(2.5 <= d <= 5.0 for d in delays[3:])
    assert len({round(d, 6) for d in delays[3:]}) > 1  # jitter: not all equal


def test_kernels_are_asked_for_ahead_and_dropped_when_not_needed(tmp_path):
    write_notebook(tmp_path / "a.ipynb", [("pass", ["writes:a.txt"])])
    write_notebook(tmp_path / "b.ipynb", [("pass", ["reads:a.txt", "writes:b.txt"])])
    write_notebook(tmp_path / "c.ipynb", [("pass", ["reads:b.txt"])])
    write_notebook(tmp_path / "d.ipynb", [("pass", ["upstream:c", "retries:0"])])
    project = Project(tmp_path)
    ex = FakeExecutor(tmp_path, outputs={"a": ["a.txt"], "b": ["b.txt"]}, fail={"c": 1})
    run_with(project, ex)
    # while a runs, its whole chain is expected to follow: kernels for b, c and d are asked for before b starts
    assert ex.wanted[:4] == ["a", "b", "c", "d"]
    assert ex.calls[0] == ("a", 1) and "d" not in [t for t, _ in ex.calls]
    assert ex.unwanted == ["d"]  # c failed: d will not run, its kernel is not needed

    again = FakeExecutor(tmp_path, outputs={"a": ["a.txt"], "b": ["b.txt"]})
    run_with(project, again)
    assert "a" in again.unwanted and "b" in again.unwanted  # up to date: skipped, no kernel wanted for them


def test_look_ahead_stops_at_what_the_executor_can_start(tmp_path):
    for i in range(8):
        write_notebook(tmp_path / f"t{i}.ipynb", [("pass", [f"upstream:t{i - 1}"] if i else [])])
    ex = FakeExecutor(tmp_path)
    run_with(Project(tmp_path), ex)  # jobs=2: at most 4 kernels asked for ahead
    assert ex.wanted[:6] == ["t0", "t1", "t2", "t3", "t4", "t1"]  # t5 only once t1 is decided


def test_resume_closes_a_run_whose_runner_died_after_its_last_attempt(tmp_path):
    """kill -9 after the last attempt was recorded, before the run's end: resume runs nothing again and closes the run."""
    write_notebook(tmp_path / "a.ipynb", ["pass"])
    project = Project(tmp_path)
    store = project.store
    store.create_run("r1", trigger="manual", logical_date="2026-01-02", parameters={}, selection={}, tasks=["a"])
    store.finish_attempt(store.start_attempt("r1", "a", 1, "k", "art/r1/a.ipynb"), "succeeded")  # the runner dies here
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute("UPDATE runs SET pid = ? WHERE id = 'r1'", (gone.pid,))
    conn.close()
    assert project.show("r1").run.status == "crashed" and project.check_resume("r1") == "r1"
    summary = project.resume("r1")
    assert summary.ok and [(t.task, t.status, t.attempts) for t in summary.tasks] == [("a", "succeeded", 1)]
    detail = project.show("r1")
    assert detail.run.status == "succeeded" and [a.number for a in detail.attempts] == [1]
    with pytest.raises(ConflictError, match="nothing left to do"):
        project.resume("r1")
