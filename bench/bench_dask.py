"""The Dask executor against the local one, measured side by side in the same run.

    python bench/bench_dask.py                # 40 x sleep(1), and a 10-task chain of no-op notebooks, medians of 3
    python bench/bench_dask.py --repeat 1 --tasks 40 --chain 10

Workloads:
- fan: TASKS independent notebooks that each `time.sleep(1)`: the local executor with --jobs 8 against a real cluster
  (`dask scheduler` and 2 `dask worker` processes x 4 threads, started here on 127.0.0.1): both have 8 slots.
- chain: CHAIN no-op notebooks, each upstream of the next, so nothing overlaps: (dask - local) / CHAIN is what the
  Dask path adds to one task (submit, the worker's thread, the result's trip back, writing the notebook back).
Every run is --force in a project that already ran once (kernels' imports warm, store created). Wall times of
Project.run in this process; the cluster's start is not counted. The load average is printed with the figures:
on a shared machine they move with it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nbflow import Project  # noqa: E402

DASK = str(Path(sys.executable).parent / "dask")


def notebook(code: str, tags: list[str]) -> str:
    return json.dumps({
        "cells": [{"cell_type": "code", "metadata": {"tags": tags}, "source": code, "outputs": [], "execution_count": None}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5})


def make_project(root: Path, n: int, chain: bool, code: str) -> Path:
    root.mkdir(parents=True)
    (root / "nbflow.toml").write_text("jobs = 8\n")
    for i in range(n):
        tags = [f"upstream:t{i - 1:03d}"] if chain and i else []
        (root / f"t{i:03d}.ipynb").write_text(notebook(code, tags))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster(workers: int, threads: int, log: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    address = f"tcp://127.0.0.1:{free_port()}"
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the cluster
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True)]
    for i in range(workers):
        procs.append(subprocess.Popen([DASK, "worker", address, "--nthreads", str(threads), "--no-dashboard", "--name", f"w{i}"],
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    import distributed

    with distributed.Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def timed(project: Project, **kwargs: object) -> float:
    started = time.perf_counter()
    summary = project.run(force=True, **kwargs)  # type: ignore[arg-type]
    took = time.perf_counter() - started
    if not summary.ok:
        raise SystemExit(f"run failed: {[(t.task, t.error) for t in summary.tasks if t.error]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--chain", type=int, default=10)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="nbflow-bench-dask-"))
    address, procs = start_cluster(2, 4, base / "cluster.log")
    try:
        fan = Project(make_project(base / "fan", args.tasks, False, "import time\ntime.sleep(1)"))
        chain = Project(make_project(base / "chain", args.chain, True, "x = 1"))
        rows = []
        for name, project, jobs in (("fan", fan, 8), ("chain", chain, 1)):
            figures: dict[str, list[float]] = {"local": [], "dask": []}
            timed(project, jobs=jobs)  # first runs: store created, imports warm
            timed(project, jobs=jobs, executor="dask", dask_address=address)
            loads = []
            for _ in range(args.repeat):
                figures["local"].append(timed(project, jobs=jobs))
                figures["dask"].append(timed(project, executor="dask", dask_address=address, jobs=None if name == "fan" else 1))
                loads.append(os.getloadavg()[0])
            rows.append((name, statistics.median(figures["local"]), statistics.median(figures["dask"]), max(loads)))
        print(f"{os.cpu_count()} CPUs here; cluster: 2 workers x 4 threads on 127.0.0.1; medians of {args.repeat}")
        print(f"{'workload':<34}{'local':>10}{'dask':>10}{'dask-local':>12}{'load avg':>10}")
        for name, local, dask, load in rows:
            label = f"fan: {args.tasks} x sleep(1), 8 slots" if name == "fan" else f"chain: {args.chain} no-op tasks, 1 at a time"
            print(f"{label:<34}{local:>9.2f}s{dask:>9.2f}s{dask - local:>+11.2f}s{load:>10.1f}")
        chain_row = rows[1]
        print(f"per-task overhead of the Dask path: {(chain_row[2] - chain_row[1]) / args.chain * 1000:+.0f} ms "
              f"((dask - local) / {args.chain} chained tasks)")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
