"""Where nbflow's per-task time goes, measured: the numbers behind docs/performance.md.

    python bench/overhead.py                 # all three parts
    python bench/overhead.py --only kernel

kernel: a kernel's start, step by step, forked and launched: wall time, the runner's CPU and the kernel's CPU.
hop:    a chain of 10 real-looking notebooks (1 s of work each), traced in process: from the end of one task's
        last cell to the start of the next task's first cell, each step's wall time and the event loop's CPU.
cpu:    60 trivial independent notebooks, --jobs 4, fork: the runner's CPU per task, by package (cProfile's own
        time per function, summed by the package it belongs to; cProfile inflates Python time, so the shares are
        what matters, and the total is taken from getrusage without the profiler).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import functools
import os
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: the notebooks)


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def kernel_steps(mode: str, n: int, cwd: str) -> None:
    """Each step of kernels.start, median over n kernels started one at a time (the template already warm)."""
    import psutil

    from nbflow.executors import forkserver, kernels
    from nbflow.executors.base import KernelLaunch

    marks: list[tuple[str, float, float]] = []

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter(), cpu_self()))

    def wrap(obj: Any, attr: str, before: str, after: str) -> None:
        orig = getattr(obj, attr)

        @functools.wraps(orig)
        async def wrapped(*a: Any, **k: Any) -> Any:
            mark(before)
            result = await orig(*a, **k)
            mark(after)
            return result
        setattr(obj, attr, wrapped)

    wrap(forkserver.Template, "fork", "kernel manager ready, fork requested", "forked: pid and pidfd back")
    wrap(kernels.IPCKernelManager, "_async_launch_kernel", "connection file written, launching", "launched")
    wrap(kernels, "wait_until_ready", "client channels started", "ready: kernel_info + IOPub")

    async def main() -> None:
        specs = kernels.KernelSpecs()
        warm = await kernels.start(KernelLaunch("python3", cwd, (), mode), specs)
        await warm.stop(now=True)
        steps: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        child: list[float] = []
        for i in range(n):
            marks.clear()
            mark("asked")
            kernel = await kernels.start(KernelLaunch("python3", cwd, (("NBFLOW_TASK", f"t{i}"),), mode), specs)
            mark("returned")
            if kernel.pid:
                times = psutil.Process(kernel.pid).cpu_times()
                child.append((times.user + times.system) * 1000)
            for (_, t0, c0), (name, t1, c1) in zip(marks, marks[1:]):
                steps[name].append(((t1 - t0) * 1000, (c1 - c0) * 1000))
            await kernel.stop(now=True)
        print(f"\n{mode}: a kernel, step by step (median of {n}; ms)")
        print(f"  {'step (time since the previous one)':48s} {'wall':>7s} {'runner CPU':>11s}")
        for name, values in steps.items():
            print(f"  {name:48s} {statistics.median(v[0] for v in values):7.1f} {statistics.median(v[1] for v in values):11.1f}")
        total = [sum(v) for v in zip(*[[w for w, _ in values] for values in steps.values()])]
        print(f"  {'total':48s} {statistics.median(total):7.1f}")
        print(f"  the kernel process's own CPU until ready: {statistics.median(child):.0f} ms"
              + (" (since the fork)" if mode == "fork" else " (interpreter start and imports included)"))

    asyncio.run(main())


def hop_trace(root: Path) -> None:
    """Per step of a hop: median wall and event-loop CPU, over the 9 hops of a 10-task chain (in process)."""
    import nbclient.client as ncc

    from nbflow import Project
    from nbflow.engine import run as engine
    from nbflow.executors import attempt, kernels

    marks: list[tuple[str, float, float]] = []
    loop_thread = threading.get_ident()

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter(), time.thread_time() if threading.get_ident() == loop_thread else 0.0))

    orig_cell = ncc.NotebookClient.async_execute_cell

    async def execute_cell(self: Any, cell: Any, index: int, *a: Any, **k: Any) -> Any:
        mark(f"cell {index} starts")
        result = await orig_cell(self, cell, index, *a, **k)
        mark(f"cell {index} ends")
        return result
    ncc.NotebookClient.async_execute_cell = execute_cell  # type: ignore[method-assign]
    orig_write = attempt._write

    def write(nb: Any, path: str) -> None:
        mark("executed notebook: writing")
        orig_write(nb, path)
        mark("written")
    attempt._write = write
    orig_db = engine.StoreCalls.__call__

    async def db(self: Any, fn: Any, *a: Any, **k: Any) -> Any:
        mark(f"store: {getattr(fn, '__name__', '?')}")
        result = await orig_db(self, fn, *a, **k)
        mark(f"store: {getattr(fn, '__name__', '?')} done")
        return result
    engine.StoreCalls.__call__ = db  # type: ignore[method-assign]
    orig_to_thread = asyncio.to_thread

    async def to_thread(fn: Any, *a: Any, **k: Any) -> Any:
        mark(f"thread: {getattr(fn, '__name__', '?')}")
        result = await orig_to_thread(fn, *a, **k)
        mark(f"thread: {getattr(fn, '__name__', '?')} done")
        return result
    asyncio.to_thread = to_thread  # type: ignore[assignment]
    orig_take = kernels.KernelPool.take

    async def take(self: Any, launch: Any) -> Any:
        mark("kernel: taken from the pool")
        result = await orig_take(self, launch)
        mark("kernel: in hand")
        return result
    kernels.KernelPool.take = take  # type: ignore[method-assign]

    with Project(root) as project:
        project.run(force=True)
    last = max(int(name.split()[1]) for name, _, _ in marks if name.startswith("cell "))
    hops: list[list[tuple[str, float, float]]] = []
    current: list[tuple[str, float, float]] | None = None
    for m in marks:
        if m[0] == f"cell {last} ends":
            current = [m]
        elif current is not None:
            current.append(m)
            if m[0] == "cell 0 starts":
                hops.append(current)
                current = None
    steps: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for hop in hops:
        seen: collections.Counter[str] = collections.Counter()
        for (_, t0, c0), (name, t1, c1) in zip(hop, hop[1:]):
            seen[name] += 1
            key = name if seen[name] == 1 else f"{name} ({seen[name]})"
            steps[key].append(((t1 - t0) * 1000, max(0.0, c1 - c0) * 1000))
    print(f"\nfrom the end of one task's last cell to the start of the next one's first cell (median of {len(hops)} hops; ms)")
    print(f"  {'step (time since the previous one)':52s} {'wall':>7s} {'loop CPU':>9s}")
    for name, values in steps.items():
        if len(values) * 2 >= len(hops):
            print(f"  {name:52s} {statistics.median(v[0] for v in values):7.1f} {statistics.median(v[1] for v in values):9.1f}")
    print(f"  {'total':52s} {statistics.median((h[-1][1] - h[0][1]) * 1000 for h in hops):7.1f}")


PACKAGES = ("jupyter_client", "zmq", "traitlets", "nbclient", "papermill", "nbformat", "jsonschema", "dateutil",
            "nbflow", "asyncio", "json", "rich", "sqlite3", "concurrent", "selectors", "threading")


def runner_cpu(root: Path, jobs: int) -> None:
    """The runner's CPU per task, and cProfile's own time per package."""
    from nbflow import Project

    with Project(root) as project:
        c0 = cpu_self()
        summary = project.run(force=True, jobs=jobs)
        total = cpu_self() - c0
        profile = cProfile.Profile()
        profile.enable()
        project.run(force=True, jobs=jobs)
        profile.disable()
    n = len(summary.tasks)
    stats = pstats.Stats(profile)
    by: collections.Counter[str] = collections.Counter()
    for (filename, _, func), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if func == "<method 'poll' of 'select.epoll' objects>" or "poll' of 'select" in func:
            continue  # the event loop waiting: not CPU
        package = next((p for p in PACKAGES if f"/{p}/" in filename or f"/{p}.py" in filename
                        or (filename == "~" and p in func)), "other (stdlib, builtins)")
        by[package] += tottime
    spent = sum(by.values())
    print(f"\nrunner CPU per task: {total / n * 1000:.1f} ms ({n} trivial notebooks, --jobs {jobs}, whole run, "
          f"getrusage of the runner process: its threads included, its kernels not)")
    print("  share of the profiled time, by package:")
    for package, seconds in by.most_common():
        if seconds / spent >= 0.01:
            print(f"    {package:28s} {100 * seconds / spent:5.1f}%  ~{total / n * 1000 * seconds / spent:5.1f} ms/task")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="kernel,hop,cpu")
    ap.add_argument("-n", type=int, default=10, help="kernels per mode in the kernel part (default 10)")
    args = ap.parse_args()
    want = set(args.only.split(","))
    load = os.getloadavg()
    print(f"{os.cpu_count()} cores, load average at start {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    tmp = Path(tempfile.mkdtemp(prefix="nbflow-overhead-"))
    try:
        if "kernel" in want:
            for mode in ("fork", "spawn"):
                kernel_steps(mode, args.n, str(tmp))
        if "hop" in want:
            root = tmp / "chain"
            bench.make_project(root, 10, chain=True, body="import time\ntime.sleep(1)")
            hop_trace(root)
        if "cpu" in want:
            root = tmp / "many"
            bench.make_project(root, 60, chain=False, body="")
            runner_cpu(root, 4)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
