"""Kernels started ahead of need: each task still gets a fresh kernel of its own, with its own cwd and env."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from nbflow import Project
from nbflow.executors import kernels
from nbflow.executors.attempt import execute_attempt
from nbflow.executors.base import AttemptSpec, KernelLaunch

from .conftest import write_notebook

LEAKY = """import os, time
secret = 42
os.environ['LEAKED'] = 'yes'
os.chdir('/')
time.sleep(1.5)
"""

PROBE = """import json, os, psutil
json.dump({'cwd': os.getcwd(), 'task': os.environ.get('NBFLOW_TASK'), 'leaked': os.environ.get('LEAKED'),
           'secret' : 'secret' in globals(), 'pid': os.getpid(),
           'started': psutil.Process().create_time()}, open('probe.json', 'w'))
"""


@pytest.mark.kernel
def test_a_prestarted_kernel_is_fresh_and_gets_the_tasks_own_cwd_and_env(tmp_path: Path):
    write_notebook(tmp_path / "leaky.ipynb", [LEAKY, "open(HOME_DIR + '/leaky.pid', 'w').write(str(os.getpid()))"])
    write_notebook(tmp_path / "sub" / "probe.ipynb", [("HOME_DIR = ''", ["parameters"]), (PROBE, ["upstream:leaky"])])
    (tmp_path / "nbflow.toml").write_text(f'[parameters]\nHOME_DIR = "{tmp_path}"\n')
    with Project(tmp_path) as project:
        summary = project.run()
        assert summary.ok, summary.tasks
        leaky_ended = next(a.ended_at for a in project.show().attempts if a.task == "leaky")
    probe = json.loads((tmp_path / "sub" / "probe.json").read_text())
    assert probe["cwd"] == str(tmp_path / "sub")  # its own folder, not the '/' the task before it moved to
    assert probe["task"] == "sub/probe"
    assert probe["leaked"] is None and probe["secret"] is False
    assert probe["pid"] != int((tmp_path / "leaky.pid").read_text())
    # started while `leaky` was still sleeping: the kernel was ready before the task was
    assert probe["started"] < leaky_ended - 0.5


@pytest.mark.kernel
def test_a_cold_attempt_starts_its_kernel_the_same_way_and_stops_it(tmp_path: Path):
    source = write_notebook(tmp_path / "sub" / "probe.ipynb", [PROBE])
    spec = AttemptSpec(run_id="r1", task="sub/probe", number=1, source=str(source), output=str(tmp_path / "out" / "probe.ipynb"),
                       cwd=str(tmp_path / "sub"), kernel="python3", parameters={"x": 1}, env={"NBFLOW_TASK": "sub/probe"})
    result = execute_attempt(spec)
    assert result.status == "succeeded", result.error
    probe = json.loads((tmp_path / "sub" / "probe.json").read_text())
    assert (probe["cwd"], probe["task"]) == (str(tmp_path / "sub"), "sub/probe")
    assert not psutil.pid_exists(probe["pid"]) or psutil.Process(probe["pid"]).status() == psutil.STATUS_ZOMBIE
    executed = json.loads((tmp_path / "out" / "probe.ipynb").read_text())
    assert "injected-parameters" in executed["cells"][0]["metadata"]["tags"]
    assert executed["metadata"]["papermill"]["parameters"] == {"x": 1}


class FakeKernel:
    def __init__(self, launch: KernelLaunch) -> None:
        self.launch, self.stopped = launch, None

    async def stop(self, now: bool = False) -> None:
        self.stopped = "now" if now else "graceful"

    def kill(self) -> None:
        self.stopped = "killed"


def test_pool_starts_in_order_up_to_capacity_and_stops_what_is_not_needed(monkeypatch):
    started: list[FakeKernel] = []

    async def fake_start(launch: KernelLaunch, specs: object = None) -> FakeKernel:
        kernel = FakeKernel(launch)
        started.append(kernel)
        return kernel

    monkeypatch.setattr(kernels, "start", fake_start)
    a, b, c, d = (KernelLaunch("python3", "/p", (("NBFLOW_TASK", n),)) for n in "abcd")

    async def scenario() -> None:
        pool = kernels.KernelPool(capacity=2)
        for launch in (a, b, c, d):
            pool.want(launch)
        await asyncio.sleep(0)
        assert [k.launch for k in started] == [a, b]  # in the order asked, no more than capacity
        ka = await pool.take(a)
        assert ka is started[0]
        pool.unwant(b)  # b will not run after all: its kernel is stopped at once, and c gets the room
        await asyncio.sleep(0.01)
        assert started[1].stopped == "now"
        assert [k.launch for k in started] == [a, b, c]
        pool.release(ka)  # a's attempt is over: shut down off the critical path, d may start
        await asyncio.sleep(0.01)
        assert ka.stopped == "graceful" and [k.launch for k in started] == [a, b, c, d]
        kd = await pool.take(d)
        assert kd is started[3]
        cold = await pool.take(KernelLaunch("python3", "/p", (("NBFLOW_TASK", "e"),)))  # never wanted: started now
        assert cold is started[4]
        pool.release(kd)
        pool.release(cold)
        await pool.close()
        assert started[2].stopped == "now"  # c was never taken
        assert all(k.stopped for k in started)

    asyncio.run(scenario())


@pytest.mark.kernel
def test_two_runs_at_once_in_one_fresh_process(tmp_path: Path):
    """What the scheduler does: concurrent runs share one process, its imports and its event loop."""
    for name in ("p1", "p2"):
        write_notebook(tmp_path / name / "a.ipynb", [("open('a.txt', 'w').write('1')", ["writes:a.txt"])])
        write_notebook(tmp_path / name / "b.ipynb", [("open('b.txt', 'w').write(open('a.txt').read() + '2')",
                                                      ["reads:a.txt", "writes:b.txt"])])
    code = ("import asyncio, sys\nfrom nbflow import Project\n"
            "async def both():\n"
            "    return await asyncio.gather(*(Project(p).run_async() for p in sys.argv[1:]))\n"
            "print([str(s.status) for s in asyncio.run(both())])\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p1"), str(tmp_path / "p2")],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "['succeeded', 'succeeded']", out.stderr
    assert (tmp_path / "p1" / "b.txt").read_text() == (tmp_path / "p2" / "b.txt").read_text() == "12"
