"""The Dask executor against real components: `dask scheduler` and two `dask worker` processes (with nannies) started
from this venv on 127.0.0.1, with different resources. Runs go through the CLI, the Python API and the REST API."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from nbflow import Project
from nbflow.errors import ExecutorError, ResourceError

from .conftest import REPO, exited, wait_for, write_notebook

pytestmark = pytest.mark.kernel
distributed = pytest.importorskip("distributed")
DASK = str(Path(sys.executable).parent / "dask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A scheduler and named workers, each its own process group, all stopped at the end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
                                  "--no-dashboard"])
        self.client = None

    def _start(self, name: str, cmd: list[str], env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> None:
        log = open(self.base / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen([*prefix, *cmd], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})

    def worker(self, name: str, *options: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> None:
        self._start(name, [DASK, "worker", self.address, "--nthreads", "2", "--no-dashboard", "--name", name, *options],
                    env, prefix)

    def connect(self, workers: int) -> Any:
        if self.client is None:
            self.client = distributed.Client(self.address, timeout=60, set_as_default=False)
        self.client.wait_for_workers(workers, timeout=90)
        return self.client

    def workers(self) -> dict[str, dict[str, Any]]:
        """name -> info (address, resources, ...)."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return {w["name"]: {**w, "address": addr} for addr, w in info.items()}

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        for name in [n for n in self.procs if n != "scheduler"] + ["scheduler"]:
            if name in self.procs:
                self.stop(name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.worker("gpu", "--resources", "GPU=2,MEMORY=4e9", env={"CUDA_VISIBLE_DEVICES": "0,1"})
        c.worker("cpu")
        c.connect(2)
        yield c
    finally:
        c.close()


def project(base: Path, cluster: Cluster, toml: str = "") -> Path:
    (base / "nbflow.toml").write_text(f'executor = "dask"\n[dask]\naddress = "{cluster.address}"\n{toml}')
    return base


def kernels_of(run_id: str) -> list[int]:
    """Kernel processes on this host started for a run (found by the NBFLOW_RUN_ID in their environment)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "ipykernel_launcher" in " ".join(proc.info["cmdline"] or []) and proc.environ().get("NBFLOW_RUN_ID") == run_id:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def test_example_pipeline_from_the_rest_api_on_two_workers(tmp_path: Path, cluster: Cluster):
    from .test_server import jupyter_server

    root = tmp_path / "root"
    example = root / "example"
    shutil.copytree(REPO / "notebooks", example / "notebooks", ignore=shutil.ignore_patterns("data", ".ipynb_checkpoints"))
    (example / "nbflow.toml").write_text(f'notebooks = "notebooks"\n[parameters]\nsample_size = 2000\n'
                                         f'[dask]\naddress = "{cluster.address}"\n')
    with jupyter_server(root) as api:
        r = api.post("runs", {"executor": "bogus"}, project="example")
        assert r.status_code == 400 and "executor" in r.json()["message"]
        r = api.post("runs", {"executor": "dask"}, project="example")
        assert r.status_code == 202, r.text
        run = api.wait_run("example", r.json()["run_id"], timeout=240)
    assert run["status"] == "succeeded", json.dumps(run, indent=1)
    addresses = {w["address"] for w in cluster.workers().values()}
    attempts = [a for t in run["tasks"] for a in t["attempts"]]
    assert len(attempts) == 5 and all(a["worker"] in addresses and a["host"] for a in attempts)
    assert all(a["peak_rss"] > 0 and a["cpu_seconds"] > 0 for a in attempts)
    started = os.environ.get("NBFLOW_KERNEL_START") or "fork"  # workers fork kernels from a template of their own too
    assert all(a["kernel_start"] == started and a["kernel_start_ms"] > 0 for a in attempts), attempts
    assert (example / "notebooks" / "data").is_dir()  # written by kernels on the workers, in the notebooks' folder
    assert Project(example).show().run.status == "succeeded"


GPU_PROBE = """import json, os
open(os.environ['NBFLOW_TASK'] + '.json', 'w').write(json.dumps({"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
     "affinity": sorted(os.sched_getaffinity(0)), "pid": os.getppid()}))"""


def test_resources_become_worker_resources(tmp_path: Path, cluster: Cluster):
    base = project(tmp_path, cluster)
    write_notebook(base / "gpu.ipynb", [(GPU_PROBE, ["gpus:1"])])
    write_notebook(base / "big.ipynb", [(GPU_PROBE, ["memory:1G"])])
    write_notebook(base / "plain.ipynb", [GPU_PROBE])
    summary = Project(base).run()
    assert summary.ok, [(t.task, t.error) for t in summary.tasks]
    workers = cluster.workers()
    attempts = {a.task: a for a in Project(base).show().attempts}
    assert attempts["gpu"].worker == workers["gpu"]["address"]  # only that worker offers GPU
    assert attempts["big"].worker == workers["gpu"]["address"]  # and MEMORY
    assert json.loads((base / "gpu.json").read_text())["cuda"] in ("0", "1")
    assert attempts["gpu"].resources == {"gpus": [json.loads((base / "gpu.json").read_text())["cuda"]]}
    assert attempts["big"].resources and attempts["big"].resources["memory"] == 1 << 30 and attempts["big"].resources["memory_by"]
    assert json.loads((base / "plain.json").read_text())["cuda"] == ""  # wherever it ran, it sees none of the GPUs handed out

    write_notebook(base / "licensed.ipynb", [("x = 1", ["resources:license=1"])])
    with pytest.raises(ResourceError) as info:
        Project(base).run(only=["licensed"])
    message = str(info.value)
    assert "licensed.ipynb (task licensed)" in message and "license=1" in message and "no worker offers" in message
    assert workers["gpu"]["address"] in message and workers["cpu"]["address"] in message and '--resources "license=1"' in message


def test_cancel_stops_the_kernels_on_the_workers(tmp_path: Path, cluster: Cluster):
    base = project(tmp_path, cluster)
    write_notebook(base / "sleepy.ipynb", ["import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))", "time.sleep(300)"])
    runner = subprocess.Popen([sys.executable, "-m", "nbflow", "run"], cwd=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (base / "kernel.pid").exists() and (base / "kernel.pid").read_text(), 120, "the kernel on a worker")
        kernel = int((base / "kernel.pid").read_text())
        assert psutil.Process(kernel).parent().pid != runner.pid  # the kernel runs under a worker, not the runner
        runner.send_signal(signal.SIGTERM)
        out, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, out.decode()
    wait_for(lambda: exited(kernel), 15, "the kernel on the worker to stop")
    detail = Project(base).show()
    assert detail.run.status == "cancelled" and [a.status for a in detail.attempts] == ["cancelled"]
    assert not kernels_of(detail.run.id)


def test_a_killed_runner_leaves_no_kernel_running_on_the_workers(tmp_path: Path, cluster: Cluster):
    """SIGKILL of the runner: the scheduler releases its tasks, and the worker stops the kernel it was running."""
    base = project(tmp_path, cluster)
    write_notebook(base / "sleepy.ipynb", ["import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))", "time.sleep(300)"])
    runner = subprocess.Popen([sys.executable, "-m", "nbflow", "run"], cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (base / "kernel.pid").exists() and (base / "kernel.pid").read_text(), 120, "the kernel on a worker")
        kernel = int((base / "kernel.pid").read_text())
        runner.kill()
        runner.wait(10)
    finally:
        if runner.poll() is None:
            runner.kill()
    wait_for(lambda: exited(kernel), 30, "the worker to stop the kernel of a run whose runner is gone")
    assert Project(base).show().run.status == "crashed"


def test_a_worker_that_cannot_see_the_project_is_refused(tmp_path: Path, cluster: Cluster):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], check=False).returncode != 0:
        pytest.skip("needs `unshare -m` (root) to give a worker its own view of the filesystem")
    (tmp_path / "p").mkdir()
    base = project(tmp_path / "p", cluster)
    write_notebook(base / "a.ipynb", ["x = 1"])
    # a worker whose filesystem hides the project folder under an empty tmpfs: as if the project were on a local disk
    script = f"mount -t tmpfs none {base} && exec \"$@\""
    cluster.worker("blind", prefix=("unshare", "-m", "sh", "-c", script, "sh"))
    try:
        cluster.connect(3)
        blind = cluster.workers()["blind"]["address"]
        with pytest.raises(ExecutorError) as info:
            Project(base).run()
        message = str(info.value)
        assert f"Dask worker {blind}" in message and str(base / ".nbflow") in message and "cannot read" in message
        assert "Fix: put the project" in message
        assert not (base / ".nbflow" / "nbflow.db").exists()  # refused before the run was recorded
    finally:
        cluster.stop("blind")
        wait_for(lambda: "blind" not in cluster.workers(), 30, "the blind worker to leave")


def test_fan_out_fan_in_survives_a_killed_worker(tmp_path: Path, cluster: Cluster):
    """One fan-out task's worker is killed mid-task: that attempt ends worker_lost, its kernel dies with the worker, nbflow
    retries it on a worker that is up, and the fan-in runs after all four."""
    base = project(tmp_path, cluster, "[defaults]\nretries = 1\nretry_delay = 0.1\n")
    write_notebook(base / "src.ipynb", [("open('src.txt', 'w').write('1')", ["writes:src.txt"])])
    for part in "abcd":
        cells: list[Any] = [("import os, time\nsrc = open('src.txt').read()", ["reads:src.txt"])]
        if part == "b":
            cells.append("if not os.path.exists('b.once'):\n    open('b.once', 'w').close()\n"
                         "    open('b.pid', 'w').write(str(os.getpid()))\n    time.sleep(300)")
        cells.append((f"open('{part}.txt', 'w').write(src + '{part}')", [f"writes:{part}.txt"]))
        write_notebook(base / f"{part}.ipynb", cells)
    write_notebook(base / "sink.ipynb", [("parts = [open(f'{p}.txt').read() for p in 'abcd']\nopen('sink.txt', 'w').write(','.join(parts))",
                                          ["reads:a.txt", "reads:b.txt", "reads:c.txt", "reads:d.txt", "writes:sink.txt"])])
    runner = subprocess.Popen([sys.executable, "-m", "nbflow", "run", "--executor", "dask"], cwd=base, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (base / "b.pid").exists() and (base / "b.pid").read_text(), 120, "b's first kernel")
        kernel = int((base / "b.pid").read_text())
        workers = {pid: address for address, pid in cluster.client.run(os.getpid).items()}
        # the worker process (its nanny restarts it): the kernel's parent, or the kernel template's when it was forked
        [worker] = [p for p in psutil.Process(kernel).parents() if p.pid in workers]
        lost = workers[worker.pid]
        worker.kill()
        wait_for(lambda: exited(kernel), 15, "the dead worker's kernel to exit")
        out, _ = runner.communicate(timeout=240)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, out.decode()
    assert (base / "sink.txt").read_text() == "1a,1b,1c,1d"
    detail = Project(base).show()
    b = [a for a in detail.attempts if a.task == "b"]
    assert [(a.number, a.status, a.error_kind) for a in b] == [(1, "failed", "worker_lost"), (2, "succeeded", None)]
    assert b[0].worker == lost and lost in (b[0].error or "") and b[1].worker != lost
    assert len({a.worker for a in detail.attempts}) >= 2  # the fan-out used both workers
    cluster.connect(2)  # the nanny brought the killed worker back
    # no kernel left behind on this host (the dead worker's orphaned kernel exited; init reaps it when it gets to it)
    assert exited(kernel) and not kernels_of(detail.run.id)


def test_a_local_cluster_of_worker_processes(tmp_path: Path):
    """[dask] local_workers: a LocalCluster started for the run (from `python -m nbflow`, whose module a spawned
    worker process imports) and stopped after it."""
    (tmp_path / "nbflow.toml").write_text('executor = "dask"\n[dask]\nlocal_workers = 1\n')
    write_notebook(tmp_path / "a.ipynb", [("import os\nopen('a.txt', 'w').write(os.environ['JPY_PARENT_PID'])", ["writes:a.txt"])])
    out = subprocess.run([sys.executable, "-m", "nbflow", "run"], check=False, cwd=tmp_path, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    [attempt] = Project(tmp_path).show().attempts
    assert attempt.worker and attempt.worker.startswith("tcp://127.0.0.1:")
    assert not psutil.pid_exists(int((tmp_path / "a.txt").read_text()))  # the worker process (the kernel's starter) ended
