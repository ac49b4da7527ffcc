"""A runner killed with SIGKILL: nothing recorded is lost, its kernels do not live on, and the run resumes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from nbflow import Project
from nbflow.errors import NbflowError

from .conftest import wait_for, write_notebook

pytestmark = pytest.mark.kernel


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigkill_of_runner_then_resume(tmp_path: Path):
    write_notebook(tmp_path / "first.ipynb", [("open('one.txt', 'w').write('1')", ["writes:one.txt"])])
    write_notebook(tmp_path / "second.ipynb", [
        ("import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))", ["reads:one.txt"]),
        "while not os.path.exists('go.flag'):\n    time.sleep(0.1)",
        ("open('two.txt', 'w').write('2')", ["writes:two.txt"]),
    ])
    runner = subprocess.Popen([sys.executable, "-m", "nbflow", "run"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (tmp_path / "kernel.pid").exists() and (tmp_path / "kernel.pid").read_text(), 120, "second's kernel")
        kernel = int((tmp_path / "kernel.pid").read_text())
        assert _alive(kernel)
        parent = psutil.Process(kernel).ppid()  # the runner (a launched kernel) or the kernel template (a forked one)
        wait_for(lambda: list(tmp_path.glob("nbflow-runs/*/second.ipynb")), 30, "a periodic save of the running notebook")
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
    finally:
        if runner.poll() is None:
            runner.kill()
    wait_for(lambda: not _alive(kernel), 15, "the orphaned kernel to be reaped")
    wait_for(lambda: parent == runner.pid or not _alive(parent), 15, "the kernel template to exit")

    project = Project(tmp_path)
    detail = project.show()
    run_id = detail.run.id
    assert detail.run.status == "crashed"  # the runner is gone: so is what it was running
    assert {t.task: t.status for t in detail.tasks} == {"first": "succeeded", "second": "crashed"}
    assert [(a.task, a.status) for a in detail.attempts] == [("first", "succeeded"), ("second", "crashed")]
    second = detail.attempts[1].artifact
    assert second and os.path.exists(second) and detail.partial == {second}  # its last save is kept, marked partial
    shown = subprocess.run([sys.executable, "-m", "nbflow", "show"], check=True, cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
    assert "crashed" in shown.stdout and "running" not in shown.stdout and "partial" in shown.stdout

    (tmp_path / "go.flag").write_text("")
    out = subprocess.run([sys.executable, "-m", "nbflow", "resume", run_id[:10]], check=False, cwd=tmp_path, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    detail = project.show(run_id)
    assert detail.run.status == "succeeded"
    assert [(a.task, a.number, a.status, a.error_kind) for a in detail.attempts] == [
        ("first", 1, "succeeded", None), ("second", 1, "failed", "abandoned"), ("second", 2, "succeeded", None)]
    assert (tmp_path / "two.txt").read_text() == "2"
    assert os.path.exists(tmp_path / "nbflow-runs" / run_id / "second.attempt-2.ipynb")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_records_cancelled_and_stops_kernels(tmp_path: Path, sig: int):
    write_notebook(tmp_path / "slow.ipynb", ["import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))",
                                            "time.sleep(120)"])
    write_notebook(tmp_path / "after.ipynb", [("pass", ["upstream:slow"])])
    runner = subprocess.Popen([sys.executable, "-m", "nbflow", "run"], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "kernel.pid").exists() and (tmp_path / "kernel.pid").read_text(), 120, "the kernel")
        kernel = int((tmp_path / "kernel.pid").read_text())
        time.sleep(0.5)
        runner.send_signal(sig)
        _, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, err
    assert "nbflow resume" in err
    assert "Traceback" not in err and "never retrieved" not in err and "DeadKernelError" not in err, err
    wait_for(lambda: not _alive(kernel), 15, "the kernel to stop")
    detail = Project(tmp_path).show()
    assert detail.run.status == "cancelled"
    assert {t.task: t.status for t in detail.tasks} == {"slow": "cancelled", "after": "cancelled"}
    assert [a.status for a in detail.attempts] == ["cancelled"]


SLOW_IMPORTS = """import runpy, sys, time
import nbflow.executors.attempt as attempt
original = attempt.preload
def preload():
    time.sleep(300)  # the runner's first imports (papermill, nbclient), as slow as on a machine that is swamped
    original()
attempt.preload = preload
sys.argv = ["nbflow", "run"]
runpy.run_module("nbflow", run_name="__main__")
"""


def test_a_cancel_does_not_wait_for_the_runners_first_imports(tmp_path: Path):
    """SIGTERM while the executor stack is still being imported in the background (the attempt is recorded running, its
    kernel is starting): the runner records the cancel and exits at once, not when the imports are done."""
    write_notebook(tmp_path / "a.ipynb", ["x = 1"])
    (tmp_path / "slow_imports.py").write_text(SLOW_IMPORTS)
    runner = subprocess.Popen([sys.executable, str(tmp_path / "slow_imports.py")], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def attempt_running() -> bool:
        try:
            return [a.status for a in Project(tmp_path).show().attempts] == ["running"]
        except NbflowError:
            return False

    try:
        wait_for(attempt_running, 120, "the attempt to be recorded running")
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=30)  # the imports would take 300 s
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, err
    assert "Traceback" not in err and "never retrieved" not in err, err
    detail = Project(tmp_path).show()
    assert detail.run.status == "cancelled" and [t.status for t in detail.tasks] == ["cancelled"]
    assert [a.status for a in detail.attempts] == ["cancelled"]  # no attempt left running in an ended run
