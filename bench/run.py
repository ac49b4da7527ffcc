"""Speed benchmark: nbflow against a plain papermill loop, measured side by side in the same run.

    python bench/run.py                 # every workload, medians of 5
    python bench/run.py --repeat 3 --only chain,noop

Each workload is generated in a temp folder. Every figure is the wall time of a whole process (interpreter
start, imports and all), as a user would feel it: `python -m nbflow run ...` against a `python -c` loop of
`papermill.execute_notebook` over the same notebooks. nbflow runs every task (`--force`) in a project that has
run once; a project's very first run, which also creates its store, has a row of its own.
Set PYTHONPATH to another checkout to measure that one instead (the before/after figures in the README).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

PY = sys.executable
PAPERMILL_LOOP = """
import sys, papermill as pm
out = sys.argv[1]
for i, nb in enumerate(sys.argv[2:]):
    pm.execute_notebook(nb, f"{out}/{i}.ipynb", kernel_name="python3", progress_bar=False, cwd=out)
"""


def notebook(cells: list[tuple[str, list[str]]]) -> str:
    return json.dumps({
        "cells": [{"cell_type": "code", "metadata": {"tags": tags}, "source": src, "outputs": [], "execution_count": None}
                  for src, tags in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5})


def make_project(root: Path, n: int, chain: bool, code: str, jobs: int = 4) -> list[Path]:
    """n notebooks, each a chain link (upstream: the previous one) or independent."""
    root.mkdir(parents=True)
    (root / "nbflow.toml").write_text(f"jobs = {jobs}\n")
    paths = []
    for i in range(n):
        tags = [f"upstream:t{i - 1:03d}"] if chain and i else []
        path = root / f"t{i:03d}.ipynb"
        path.write_text(notebook([(code, tags)]))
        paths.append(path)
    return paths


def make_big_project(root: Path, n: int) -> None:
    """n notebooks wired by written and read files, like a real project (each reads one or two earlier outputs)."""
    root.mkdir(parents=True)
    for i in range(n):
        cells = [("n_rows = 10", ["parameters"]), (f"import pandas as pd  # task {i}", [f"writes:data/t{i}.csv"])]
        for j in {i // 2, i // 3} - {i} if i else ():
            cells.append((f"x{j} = open('data/t{j}.csv').read()", [f"reads:data/t{j}.csv"]))
        (root / f"t{i:04d}.ipynb").write_text(notebook(cells))


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> tuple[float, int]:
    """Wall seconds of a process and the peak RSS (bytes) of that process alone, sampled every 10 ms."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = [0]

    def sample() -> None:
        try:
            p = psutil.Process(proc.pid)
            while proc.poll() is None:
                peak[0] = max(peak[0], p.memory_info().rss)
                time.sleep(0.01)
        except psutil.Error:
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out.decode(errors='replace')[-3000:]}")
    return wall, peak[0]


def median_of(repeat: int, once: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    results = [once() for _ in range(repeat)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def nbflow_run(root: Path, *args: str) -> list[str]:
    return [PY, "-m", "nbflow", "run", *args]


def papermill_loop(root: Path, paths: list[Path]) -> list[str]:
    out = root.parent / f"{root.name}-papermill-out"  # outside the project, or nbflow would find them as tasks
    out.mkdir(exist_ok=True)
    return [PY, "-c", PAPERMILL_LOOP, str(out), *map(str, paths)]


def all_run(root: Path, jobs: int | None, repeat: int, new_project: bool = False) -> tuple[float, int]:
    """Every task executes: `--force` on a project that has run before, or a first run (store created)."""
    args = ["--jobs", str(jobs)] if jobs else []
    timed(nbflow_run(root, *args), root)  # the store exists and the cache is warm on disk

    def once() -> tuple[float, int]:
        if new_project:
            for folder in (".nbflow", "nbflow-runs"):
                shutil.rmtree(root / folder, ignore_errors=True)
            return timed(nbflow_run(root, *args), root)
        return timed(nbflow_run(root, "--force", *args), root)
    return median_of(repeat, once)


def row(name: str, ours: float, base: float | None, goal: str, ok: bool | None, note: str = "") -> list[str]:
    ratio = f"{ours / base:.2f}x" if base else ""
    return [name, f"{ours:.2f} s", f"{base:.2f} s" if base else "", ratio, goal,
            "" if ok is None else ("yes" if ok else "NO"), note]


def print_table(rows: list[list[str]]) -> None:
    head = ["workload", "nbflow", "papermill loop", "ratio", "goal", "met", "note"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    print(line(head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def peers() -> str:
    found = [name for name in ("ploomber", "prefect", "dagster") if shutil.which(name)]
    return ", ".join(found) if found else "none installed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure; the median is printed (default 5)")
    ap.add_argument("--only", default="chain,noop,fanout,sleep,compile", help="comma-separated workloads")
    args = ap.parse_args()
    want = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="nbflow-bench-"))
    rows: list[list[str]] = []
    import nbflow

    print(f"nbflow {nbflow.__version__} from {os.path.dirname(nbflow.__file__)}")
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}; "
          f"medians of {args.repeat}; peers: {peers()}\n")
    try:
        if want & {"chain", "noop"}:
            root = tmp / "chain"
            paths = make_project(root, 10, chain=True, code="x = 1")
            if "chain" in want:
                base, _ = median_of(args.repeat, lambda: timed(papermill_loop(root, paths), root))
                ours, _ = all_run(root, None, args.repeat)
                rows.append(row("chain of 10 trivial, all run (--force)", ours, base, "<= 0.30x", ours / base <= 0.30))
                ours, _ = all_run(root, None, args.repeat, new_project=True)
                rows.append(row("  the same, first run of a new project", ours, base, "", None, "includes creating the store"))
            if "noop" in want:
                timed(nbflow_run(root), root)  # make sure everything is up to date
                ours, _ = median_of(args.repeat, lambda: timed(nbflow_run(root), root))
                rows.append(row("same chain, nothing changed", ours, None, "<= 0.5 s", ours <= 0.5))
        if "fanout" in want:
            root = tmp / "fanout"
            paths = make_project(root, 20, chain=False, code="x = 1")
            ours, peak = all_run(root, 4, args.repeat)
            base, base_peak = median_of(args.repeat, lambda: timed(papermill_loop(root, paths), root))
            rows.append(row("20 independent, --jobs 4", ours, base, "<= 0.35x", ours / base <= 0.35))
            rows.append([" peak RSS of the runner", f"{peak / 2**20:.0f} MiB", f"{base_peak / 2**20:.0f} MiB", "", "report", "",
                         "runner process only, kernels not counted"])
        if "sleep" in want:
            root = tmp / "sleep"
            paths = make_project(root, 10, chain=True, code="import time\ntime.sleep(1)")
            ours, _ = all_run(root, None, args.repeat)
            base, _ = median_of(args.repeat, lambda: timed(papermill_loop(root, paths), root))
            rows.append(row("chain of 10 x sleep(1)", ours, base, "overhead <= 0.5 s", ours - 10 <= 0.5,
                            f"overhead {ours - 10:.2f} s vs {base - 10:.2f} s"))
        if "compile" in want:
            root = tmp / "big"
            make_big_project(root, 1000)
            code = "import sys; from nbflow import Project; print(len(Project(sys.argv[1]).compile().tasks))"
            ours, _ = median_of(args.repeat, lambda: timed([PY, "-c", code, str(root)], root))
            rows.append(row("compile 1,000 notebooks, cold process", ours, None, "<= 1.0 s", ours <= 1.0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows)


if __name__ == "__main__":
    main()
