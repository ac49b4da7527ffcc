"""What text notebooks (jupytext) cost at compile, next to .ipynb projects, in a cold process each time.

    python bench/bench_text.py                          # medians of 5
    python bench/bench_text.py --baseline /path/to/other/checkout

Workloads (1,000 tasks each, wired by reads/writes like bench/run.py's compile workload): .ipynb notebooks; the same
with 200 plain Python modules and a README beside them (discovery looks at each .py as text, never with jupytext);
the same tasks as .py percent files; and as .ipynb + .py pairs. `--baseline` runs the .ipynb workload with another
checkout on PYTHONPATH too (say, main before text notebooks), so the two are measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import make_big_project  # noqa: E402  (bench/run.py: the same 1,000-notebook project)

PY = sys.executable
COMPILE = "import sys; from nbflow import Project; print(len(Project(sys.argv[1]).compile().tasks))"


def as_percent(src: Path, dst: Path, keep_ipynb: bool) -> None:
    """Each notebook of `src` as a jupytext percent .py file in `dst` (with its .ipynb beside it when `keep_ipynb`)."""
    import jupytext

    dst.mkdir(parents=True)
    for nb in sorted(src.glob("*.ipynb")):
        notebook = jupytext.read(nb)
        jupytext.write(notebook, dst / (nb.stem + ".py"), fmt="py:percent")
        if keep_ipynb:
            shutil.copy(nb, dst / nb.name)


def compile_seconds(root: Path, repeat: int, pythonpath: str | None) -> tuple[float, str]:
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    times, out = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([PY, "-c", COMPILE, str(root)], env=env, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        out = done.stdout.strip()
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline", default=None, help="another checkout of nbflow, measured on the .ipynb workload")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nbflow-bench-text-"))
    rows = []
    try:
        ipynb = tmp / "ipynb"
        make_big_project(ipynb, 1000)
        helpers = Path(shutil.copytree(ipynb, tmp / "helpers"))
        for i in range(200):
            (helpers / f"helper_{i:03d}.py").write_text(f'"""A module the notebooks import."""\n\n\ndef f{i}():\n    return {i}\n')
        (helpers / "README.md").write_text("# Notes\n")
        as_percent(ipynb, tmp / "percent", keep_ipynb=False)
        as_percent(ipynb, tmp / "paired", keep_ipynb=True)
        if args.baseline:
            rows.append(("1,000 .ipynb (baseline checkout)", *compile_seconds(ipynb, args.repeat, args.baseline)))
        for name, root in (("1,000 .ipynb", ipynb), ("1,000 .ipynb + 200 plain .py + README", helpers),
                           ("1,000 .py percent (jupytext)", tmp / "percent"), ("1,000 .ipynb + .py pairs", tmp / "paired")):
            rows.append((name, *compile_seconds(root, args.repeat, None)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'compile, cold process':<{width}}  median   tasks")
    print(f"{'-' * width}  -------  -----")
    for name, seconds, tasks in rows:
        print(f"{name:<{width}}  {seconds:5.2f} s  {tasks}")


if __name__ == "__main__":
    main()
