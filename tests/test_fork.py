"""Kernels forked from the template: each task still gets a fresh interpreter, the same one a launched kernel gives,
with the same outputs; anything that cannot be forked is launched instead, and nothing outlives the runner."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.kernelspec import KernelSpec

from nbflow import Project
from nbflow.config import load_config
from nbflow.errors import ConfigError
from nbflow.executors import forking, forkserver, kernels
from nbflow.executors.base import KernelLaunch

from .conftest import wait_for, write_notebook

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _default_kernel_start(monkeypatch):
    """These tests say which way kernels start themselves: the CI's spawn pass does not apply to them."""
    monkeypatch.delenv("NBFLOW_KERNEL_START", raising=False)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# random and json were imported by the template: a patch that leaked through it would show in the next kernel
DIRTY = """import atexit, json, os, random, sys, xml.dom.minidom
HERE = os.getcwd()
mine = random.random()
LEAK = 'leaked'
random.random = lambda: 0.5
json.JSONDecoder.nbflow_leak = True
os.environ['LEAKED_ENV'] = '1'
sys.path.append('/nowhere')
atexit.register(lambda: open(os.path.join(HERE, 'atexit.txt'), 'a').write(f'{os.getpid()}\\n'))
os.chdir('/')
json.dump({'pid': os.getpid(), 'random': mine}, open(os.path.join(HERE, 'dirty.json'), 'w'))
"""

PROBE = """import atexit, json, os, random, sys
json.dump({'pid': os.getpid(), 'ppid': os.getppid(), 'cwd': os.getcwd(), 'leak': 'LEAK' in globals(),
           'patched': hasattr(json.JSONDecoder, 'nbflow_leak'), 'env': os.environ.get('LEAKED_ENV'), 'nowhere': '/nowhere' in sys.path,
           'minidom': 'xml.dom.minidom' in sys.modules, 'nbflow': 'nbflow' in sys.modules,
           'debugpy': 'debugpy' in sys.modules, 'task': os.environ.get('NBFLOW_TASK'),
           'run_id': os.environ.get('NBFLOW_RUN_ID'), 'project': os.environ.get('NBFLOW_PROJECT'),
           'random': random.random(), 'atexit': atexit._ncallbacks(), 'path': sys.path, 'argv0': sys.argv[0],
           'numpy_loaded': 'numpy' in sys.modules},
          open(f"{os.environ['NBFLOW_TASK'].replace('/', '_')}.json", 'w'))
"""


def _probe_project(root: Path, config: str = "") -> None:
    write_notebook(root / "dirty.ipynb", [DIRTY])
    write_notebook(root / "sub" / "probe.ipynb", [(PROBE, ["upstream:dirty"])])
    write_notebook(root / "fresh.ipynb", [PROBE])
    (root / "nbflow.toml").write_text(config)


def test_each_forked_task_gets_a_fresh_interpreter(tmp_path: Path):
    _probe_project(tmp_path)
    with Project(tmp_path) as project:
        summary = project.run()
        assert summary.ok, summary.tasks
        attempts = {a.task: a for a in project.show(summary.run_id).attempts}
    assert {a.kernel_start for a in attempts.values()} == {"fork"}
    assert all(a.kernel_start_ms and a.kernel_start_ms > 0 for a in attempts.values())
    dirty = json.loads((tmp_path / "dirty.json").read_text())
    probe = json.loads((tmp_path / "sub" / "sub_probe.json").read_text())
    fresh = json.loads((tmp_path / "fresh.json").read_text())
    # nothing the task before it did is left: globals, monkeypatches, cwd, sys.path, imports, env, atexit hooks
    assert probe["leak"] is False and probe["patched"] is False and probe["random"] != 0.5 and probe["env"] is None
    assert probe["cwd"] == str(tmp_path / "sub") and not probe["nowhere"] and not probe["minidom"]
    assert probe["atexit"] == fresh["atexit"] and probe["path"] == fresh["path"]
    atexit_ran = (tmp_path / "atexit.txt").read_text().split() if (tmp_path / "atexit.txt").exists() else []
    assert set(atexit_ran) <= {str(dirty["pid"])}  # dirty's hook runs (at most) in dirty's kernel, never in another
    # a process of its own, its own random numbers, the task's environment, nothing of nbflow or of the debugger
    assert len({dirty["pid"], probe["pid"], fresh["pid"]}) == 3 and probe["ppid"] == fresh["ppid"] != os.getpid()
    assert len({dirty["random"], probe["random"], fresh["random"]}) == 3
    assert (probe["task"], probe["run_id"], probe["project"]) == ("sub/probe", summary.run_id, str(tmp_path))
    assert fresh["task"] == "fresh"
    assert not probe["nbflow"] and not probe["debugpy"] and not probe["numpy_loaded"]
    assert probe["argv0"].endswith("ipykernel_launcher.py")


def test_preloaded_numpy_is_reseeded_in_every_kernel(tmp_path: Path):
    code = ("import json, os, random, sys\nimport numpy as np\n"
            "json.dump({'preloaded': PRELOADED, 'np': np.random.random(), 'random': random.random()}, "
            "open(os.environ['NBFLOW_TASK'] + '.json', 'w'))")
    for name in ("a", "b"):
        write_notebook(tmp_path / f"{name}.ipynb", ["import sys\nPRELOADED = 'numpy' in sys.modules", code])
    (tmp_path / "nbflow.toml").write_text('preload = ["numpy"]\n')
    with Project(tmp_path) as project:
        summary = project.run()
        assert summary.ok, summary.tasks
        assert {a.kernel_start for a in project.show(summary.run_id).attempts} == {"fork"}
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["preloaded"] and b["preloaded"]  # imported by the template, before the task's first line
    assert a["np"] != b["np"] and a["random"] != b["random"]


RICH = r'''import os, subprocess, sys, warnings
print("to stdout"); print("to stderr", file=sys.stderr)
os.write(1, b"written to fd 1\n")
subprocess.run(["echo", "from a child process"], check=True)
warnings.warn("a warning")
'''
DISPLAYS = r'''import base64
from IPython.display import HTML, Image, Markdown, display
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
display(HTML("<b>bold</b>"), Markdown("*md*"), Image(PNG))
'''
PLOT = '''import matplotlib.pyplot as plt
plt.plot([1, 3, 2]); plt.title("a line")
plt.show()
'''
# The one known difference: a forked kernel has no debugger, so the variable debugpy sets when imported is not there.
INTROSPECT = '''import json, os, sys
print(json.dumps({"path": sys.path, "argv": [os.path.basename(a) for a in sys.argv[:1]] + sys.argv[1:2],
                  "executable": sys.executable, "cwd": os.getcwd(), "flags": list(sys.flags),
                  "env": sorted(k for k in os.environ if k != "PYDEVD_USE_FRAME_EVAL"), "name": __name__,
                  "shell": type(get_ipython()).__name__, "stdin": type(sys.stdin).__name__,
                  "backend": os.environ.get("MPLBACKEND"), "signals": [str(__import__("signal").getsignal(s))
                  for s in (2, 15, 17)]}, sort_keys=True))
'''


def _streams_joined(cell: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A cell's outputs with consecutive stream outputs of one name joined: where a kernel's output flushes split
    the text is a matter of timing, not of how the kernel started (nbformat readers show them the same)."""
    if "outputs" not in cell:
        return None
    joined: list[dict[str, Any]] = []
    for out in cell["outputs"]:
        if out.get("output_type") == "stream" and joined and joined[-1].get("output_type") == "stream" \
                and joined[-1].get("name") == out.get("name"):
            joined[-1] = {**joined[-1], "text": "".join(joined[-1]["text"]) + "".join(out["text"])}
        else:
            joined.append(dict(out))
    for out in joined:
        if out.get("output_type") == "stream":
            out["text"] = "".join(out["text"])
    return joined


def _normalised(path: Path, run_id: str) -> list[dict[str, Any]]:
    """An executed notebook's cells without what differs from run to run: times, run ids, execution metadata."""
    nb = json.loads(path.read_text())
    cells = []
    for cell in nb["cells"]:
        text = json.dumps({"source": cell["source"], "tags": cell["metadata"].get("tags"), "outputs": _streams_joined(cell),
                           "status": cell["metadata"].get("papermill", {}).get("status"),
                           "count": cell.get("execution_count")}, sort_keys=True)
        text = text.replace(run_id, "RUN_ID")
        text = re.sub(r"ipykernel_\d+", "ipykernel_PID", text)  # the folder of a cell's code file is named after the pid
        cells.append(json.loads(text))
    return cells


def test_forked_and_launched_kernels_give_the_same_executed_notebooks(example_project: Path):
    write_notebook(example_project / "notebooks" / "rich.ipynb", [RICH, DISPLAYS, PLOT, "import pandas as pd\n"
                                                                  "pd.DataFrame({'a': [1, 2]})", INTROSPECT])
    config = (example_project / "nbflow.toml").read_text()
    runs = {}
    for how in ("spawn", "fork"):
        (example_project / "nbflow.toml").write_text(f'kernel_start = "{how}"\n' + config)
        with Project(example_project) as project:
            summary = project.run({"run_date": "2026-01-01"}, force=True)
            assert summary.ok, summary.tasks
            assert {a.kernel_start for a in project.show(summary.run_id).attempts} == {how}
        runs[how] = summary
    names = sorted(p.name for p in Path(runs["fork"].artifacts).glob("*.ipynb"))
    assert names == ["clean.ipynb", "features.ipynb", "ingest.ipynb", "report.ipynb", "rich.ipynb", "train.ipynb"]
    for name in names:
        fork = _normalised(Path(runs["fork"].artifacts) / name, runs["fork"].run_id)
        spawn = _normalised(Path(runs["spawn"].artifacts) / name, runs["spawn"].run_id)
        for index, (f, s) in enumerate(zip(fork, spawn)):
            assert f == s, f"{name}, cell {index}"
        assert len(fork) == len(spawn)
    rich = _normalised(Path(runs["fork"].artifacts) / "rich.ipynb", runs["fork"].run_id)
    kinds = [o.get("name") or sorted(o.get("data", {})) for c in rich for o in c["outputs"] or []]
    assert ["image/png", "text/plain"] in kinds and "stderr" in kinds  # the plot and the warning made it


def _kernelspec(root: Path, name: str, argv: list[str], **extra: Any) -> None:
    folder = root / "kernels" / name
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": name, "language": "python", **extra}))


def test_what_cannot_be_forked_is_launched_and_says_so(tmp_path: Path, monkeypatch, caplog):
    wrapper = tmp_path / "other-python"  # another interpreter, as far as nbflow can tell: it runs a script
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ipykernel_launcher "$@"\n')
    wrapper.chmod(0o755)
    _kernelspec(tmp_path / "jupyter", "other", [str(wrapper), "-f", "{connection_file}"])
    _kernelspec(tmp_path / "jupyter", "by-message", [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                interrupt_mode="message")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    project_root = tmp_path / "p"
    code = ("import os, sys\nopen(os.environ['NBFLOW_TASK'] + '.txt', 'w').write(sys.executable)", ["writes:{name}.txt"])
    for name, kernel in (("native", "python3"), ("other", "other"), ("by_message", "by-message")):
        write_notebook(project_root / f"{name}.ipynb", [(code[0], [code[1][0].format(name=name)])], kernel=kernel)
    with caplog.at_level(logging.DEBUG, logger="nbflow.kernels"), Project(project_root) as project:
        summary = project.run()
        assert summary.ok, summary.tasks
        started = {a.task: a.kernel_start for a in project.show(summary.run_id).attempts}
    assert started == {"native": "fork", "other": "spawn", "by_message": "spawn"}
    assert "not this interpreter" in caplog.text and "interrupt mode is message" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("nbflow")]  # not a failure


def test_a_failing_fork_path_falls_back_to_launching(tmp_path: Path, caplog):
    write_notebook(tmp_path / "a.ipynb", ["x = 1"])
    (tmp_path / "nbflow.toml").write_text('preload = ["nbflow_no_such_module"]\n')
    with caplog.at_level(logging.WARNING, logger="nbflow.kernels"), Project(tmp_path) as project:
        summary = project.run()
        assert summary.ok, summary.tasks
        assert [a.kernel_start for a in project.show(summary.run_id).attempts] == ["spawn"]
    assert "could not fork a kernel" in caplog.text and "nbflow_no_such_module" in caplog.text


def test_kernel_start_spawn_in_the_settings_and_the_environment(tmp_path: Path, monkeypatch):
    write_notebook(tmp_path / "a.ipynb", ["x = 1"])
    (tmp_path / "nbflow.toml").write_text('kernel_start = "spawn"\n')
    with Project(tmp_path) as project:
        summary = project.run()
        assert [a.kernel_start for a in project.show(summary.run_id).attempts] == ["spawn"]
    (tmp_path / "nbflow.toml").write_text('kernel_start = "fork"\n')
    monkeypatch.setenv("NBFLOW_KERNEL_START", "spawn")  # the environment wins (CI runs the run tests both ways)
    assert load_config(str(tmp_path)).kernel_start == "spawn"
    shown = subprocess.run([sys.executable, "-m", "nbflow", "show"], cwd=tmp_path, check=True, capture_output=True,
                           text=True, timeout=60)
    assert re.search(r"spawn \d+ ms", shown.stdout), shown.stdout


def test_settings_are_checked(tmp_path: Path, monkeypatch):
    for text, field in (('kernel_start = "forked"', "kernel_start"), ('preload = ["pandas", "not a module"]', "preload"),
                        ("preload = 'pandas'", "preload")):
        (tmp_path / "nbflow.toml").write_text(text + "\n")
        with pytest.raises(ConfigError) as err:
            load_config(str(tmp_path))
        assert err.value.field == field
    (tmp_path / "nbflow.toml").write_text('preload = ["pandas", "numpy.linalg"]\n')
    assert load_config(str(tmp_path)).preload == ("pandas", "numpy.linalg")
    monkeypatch.setenv("NBFLOW_KERNEL_START", "sideways")
    with pytest.raises(ConfigError, match="NBFLOW_KERNEL_START"):
        load_config(str(tmp_path))


def test_which_kernel_specs_can_be_forked(tmp_path: Path, monkeypatch):
    def spec(argv: list[str], **extra: Any) -> KernelSpec:
        return KernelSpec(argv=argv, display_name="x", language="python", **extra)

    native = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert forking.unavailable_reason(spec(native)) is None
    assert forking.unavailable_reason(spec([sys.executable, *native[1:], "--matplotlib=inline"])) is None
    other_venv = tmp_path / "bin" / "python"  # the same interpreter file, reached from another folder: another venv
    other_venv.parent.mkdir()
    other_venv.symlink_to(sys.executable)
    assert "not this interpreter" in str(forking.unavailable_reason(spec([str(other_venv), *native[1:]])))
    assert "not this interpreter" in str(forking.unavailable_reason(spec(["R", "--slave", "-f", "{connection_file}"])))
    assert "ipykernel" in str(forking.unavailable_reason(spec(["python", "-m", "other_kernel", "-f", "{connection_file}"])))
    assert "provisioner" in str(forking.unavailable_reason(spec(native, metadata={"kernel_provisioner": {"provisioner_name": "x"}})))
    monkeypatch.setattr(sys, "platform", "darwin")
    assert "Linux" in str(forking.unavailable_reason(spec(native)))


async def _execute(kernel: kernels.Kernel, code: str, timeout: float = 30, printing: asyncio.Event | None = None) -> dict[str, Any]:
    """Run code in the kernel; its shell reply and everything it printed. `printing` is set once the code has printed."""
    msg_id = kernel.kc.execute(code)
    printed = []
    while True:
        msg = await kernel.kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
            if printing is not None:
                printing.set()
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = await kernel.kc.get_shell_msg(timeout=timeout)
    return {**reply["content"], "printed": "".join(printed)}


def test_interrupt_and_kill_a_forked_kernel(tmp_path: Path):
    async def scenario() -> None:
        launch = KernelLaunch("python3", str(tmp_path), (("NBFLOW_TASK", "t"),), "fork")
        kernel = await kernels.start(launch)
        try:
            assert kernel.how == "fork" and kernel.pid and psutil.Process(kernel.pid).ppid() != os.getpid()
            printing = asyncio.Event()  # the cell has printed: the interrupt lands in user code, not before it
            code = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)"
            running = asyncio.ensure_future(_execute(kernel, code, printing=printing))
            await asyncio.wait_for(printing.wait(), 20)
            await kernel.km.interrupt_kernel()
            reply = await asyncio.wait_for(running, 20)
            assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
            assert (await _execute(kernel, "print(6 * 7)"))["printed"] == "42\n"  # still alive and well
            kernel.kill()
            await asyncio.wait_for(_until_dead(kernel), 10)
        finally:
            await kernel.stop(now=True)

    asyncio.run(scenario())


async def _until_dead(kernel: kernels.Kernel) -> None:
    while await kernel.km.is_alive():
        await asyncio.sleep(0.05)


def test_a_task_timeout_kills_a_forked_kernel(fixture_project):
    project = Project(fixture_project("sleeps_forever", config="[defaults]\ntimeout = 3\n"))
    summary = project.run()
    [attempt] = project.show(summary.run_id).attempts
    assert (attempt.error_kind, attempt.kernel_start) == ("timeout", "fork")
    assert summary.tasks[0].error == "the notebook ran longer than its 3 s timeout"


def test_the_template_and_its_kernels_die_with_the_runner(tmp_path: Path):
    code = textwrap.dedent("""
        import asyncio, sys
        from nbflow.executors import kernels
        from nbflow.executors.base import KernelLaunch
        async def main():
            kernel = await kernels.start(KernelLaunch("python3", sys.argv[1], (), "fork"))
            print(kernel.how, kernel.pid, flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
    """)
    runner = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        how, pid = runner.stdout.readline().split()  # type: ignore[union-attr]
        kernel = int(pid)
        template = psutil.Process(kernel).ppid()
        assert how == "fork" and template != runner.pid and psutil.Process(template).ppid() == runner.pid
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
    finally:
        if runner.poll() is None:
            runner.kill()
    wait_for(lambda: not _alive(kernel) and not _alive(template), 15, "the template and its kernel to exit")


def test_a_killed_template_takes_its_kernels_and_the_next_kernel_gets_a_new_one(tmp_path: Path):
    async def scenario() -> None:
        launch = KernelLaunch("python3", str(tmp_path), (), "fork")
        first = await kernels.start(launch)
        template = forkserver.get_template(())
        assert first.how == "fork" and first.pid and psutil.Process(first.pid).ppid() == template.process.pid
        os.kill(template.process.pid, signal.SIGKILL)
        await asyncio.wait_for(_until_dead(first), 10)  # the kernel dies with its template (PR_SET_PDEATHSIG)
        template.process.wait(10)
        second = await kernels.start(launch)
        try:
            assert second.how == "fork" and forkserver.get_template(()).process.pid != template.process.pid
            assert (await _execute(second, "print('hello')"))["printed"] == "hello\n"
        finally:
            await first.stop(now=True)
            await second.stop(now=True)

    asyncio.run(scenario())
