"""Where nbflow's per-task time goes, measured: the numbers behind docs/performance.md.

    python bench/overhead.py                 # all three parts
    python bench/overhead.py --only kernel

kernel: a kernel's start, step by step, forked and launched: wall time, the runner's CPU and the kernel's CPU.
hop:    a chain of 10 real-looking notebooks (1 s of work each), traced in process: from the end of one task's
        last cell to the start of the next task's first cell, each step's wall time and the event loop's CPU.
cpu:    60 real-looking independent notebooks, --jobs 4, fork: the runner's CPU per task (getrusage of the
        process), then the same work in parts, one at a time: a kernel's start and stop, a notebook executed on a
        ready kernel, the engine and the store alone (an executor that succeeds at once).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import os
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


def hop_trace(root: Path, mode: str) -> None:
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

    os.environ["NBFLOW_KERNEL_START"] = mode
    with Project(root) as project:
        project.run(force=True)
    del os.environ["NBFLOW_KERNEL_START"]
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
    print(f"\n{mode}: from the end of one task's last cell to the start of the next one's first cell (median of {len(hops)} hops; ms)")
    print(f"  {'step (time since the previous one)':52s} {'wall':>7s} {'loop CPU':>9s}")
    for name, values in steps.items():
        if len(values) * 2 >= len(hops):
            print(f"  {name:52s} {statistics.median(v[0] for v in values):7.1f} {statistics.median(v[1] for v in values):9.1f}")
    print(f"  {'total':52s} {statistics.median((h[-1][1] - h[0][1]) * 1000 for h in hops):7.1f}")


class Instant:
    """An executor whose attempts succeed at once, writing what the bench's notebooks declare: the engine and the
    store alone."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def want(self, launch: Any) -> None:
        pass

    def unwant(self, launch: Any) -> None:
        pass

    async def submit(self, spec: Any) -> Any:
        from nbflow.executors.base import AttemptResult
        from nbflow.states import AttemptState

        (self.root / "data").mkdir(exist_ok=True)
        (self.root / "data" / f"{spec.task}.txt").write_text("4950")
        now = time.time()
        return AttemptResult(status=AttemptState.SUCCEEDED, started_at=now, ended_at=now, kernel_start="fork",
                             kernel_start_ms=1.0)

    async def close(self, cancel: bool = False) -> None:
        pass


def runner_cpu(root: Path, jobs: int, n: int) -> None:
    """The runner's CPU per task for a whole run, then for its parts measured one at a time."""
    from nbflow import Project
    from nbflow.engine.run import Engine, RunPlan
    from nbflow.executors import kernels
    from nbflow.executors.attempt import execute_attempt_async
    from nbflow.executors.base import AttemptSpec, KernelLaunch
    from nbflow.project import new_run_id

    with Project(root) as project:
        project.run(force=True, jobs=jobs)  # the store exists, the stack is imported, the template is up
        c0 = cpu_self()
        summary = project.run(force=True, jobs=jobs)
        whole = (cpu_self() - c0) / len(summary.tasks)
        pipeline = project.compile()
        task = pipeline.tasks[pipeline.order[0]]

        async def parts() -> dict[str, float]:
            specs = kernels.KernelSpecs()
            launch = KernelLaunch("python3", str(root), (("NBFLOW_TASK", task.name),), "fork")
            start, stop, notebook = [], [], []
            for i in range(n):
                c = cpu_self()
                kernel = await kernels.start(launch, specs)
                start.append(cpu_self() - c)
                spec = AttemptSpec(run_id="bench", task=task.name, number=1, source=task.path,
                                   output=str(root.parent / "out" / f"{i}.ipynb"), cwd=str(root), kernel="python3",
                                   parameters={"run_id": "bench", "run_date": "2026-01-01"}, env=dict(launch.env))

                async def take(_: Any, ready: Any = kernel) -> Any:
                    return ready
                c = cpu_self()
                await execute_attempt_async(spec, take, lambda k: None)
                notebook.append(cpu_self() - c)
                c = cpu_self()
                await kernel.stop()
                stop.append(cpu_self() - c)
            run_id = new_run_id()
            params = project.run_parameters({}, run_id, None)
            project.store.create_run(run_id, trigger="bench", logical_date=params["run_date"], parameters=params,
                                     selection={}, tasks=list(pipeline.order))
            engine = Engine(project.config, pipeline, project.store, Instant(root))
            c = cpu_self()
            await engine.execute(RunPlan(run_id, params, tuple(pipeline.order), force=True, jobs=jobs))
            engine_cpu = (cpu_self() - c) / len(pipeline.order)
            return {"kernel start (runner side; fork)": statistics.median(start),
                    "notebook on a ready kernel (papermill steps, nbclient)": statistics.median(notebook),
                    "kernel stop (runner side)": statistics.median(stop),
                    "engine and store (plan, records, hashes)": engine_cpu}

        measured = asyncio.run(parts())
    print(f"\nrunner CPU per task: {whole * 1000:.1f} ms ({len(summary.tasks)} real-looking notebooks, --jobs {jobs}, "
          f"forced re-run, in process: getrusage of the runner, its threads included, its kernels not)")
    print("  the same work in parts, one at a time (median; ms):")
    for name, seconds in measured.items():
        print(f"    {name:56s} {seconds * 1000:6.1f}")
    print(f"    {'sum of the parts':56s} {sum(measured.values()) * 1000:6.1f}")


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
            for mode in ("fork", "spawn"):
                hop_trace(root, mode)
        if "cpu" in want:
            root = tmp / "many"
            bench.make_project(root, 60, chain=False, body="")
            runner_cpu(root, 4, args.n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
