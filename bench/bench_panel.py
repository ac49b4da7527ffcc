"""Benchmark of the JupyterLab panel in a real browser (Debian's Chromium), not a test.

1. Render: a generated 300-task pipeline, from running the "Open nbflow pipeline" command (which fetches
   `pipeline` and lays the graph out with dagre) to all 300 nodes in the DOM. Median of several opens.
   Baseline in the same run: the CLI's Graphviz rendering of the same pipeline (`Project.graph('svg')`).
2. Live update: a task state change recorded straight into the store (nbflow.store API, as the runner does)
   until the browser sees that node's data-state change (MutationObserver), both timed on this machine's clock.

    .venv/bin/python bench/bench_panel.py [--tasks 300] [--opens 7] [--changes 15] [--screenshot PNG]

NBFLOW_BENCH_VERBOSE=1 prints each state change's latency.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from nbflow.project import Project

CHROMIUM = "/usr/bin/chromium"
GOAL_MS = 1000.0


def notebook(cells: list[tuple[str, list[str]]]) -> dict:
    return {"cells": [{"cell_type": "code", "metadata": {"tags": tags}, "source": src, "outputs": [], "execution_count": None}
                      for src, tags in cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def generate(root: Path, n: int, width: int = 12) -> None:
    """n notebooks in layers of `width`; each depends on one or two tasks of the layer before (never run)."""
    root.mkdir(parents=True)
    for i in range(n):
        layer, pos = divmod(i, width)
        tags = []
        if layer:
            prev = range((layer - 1) * width, min(layer * width, n))
            ups = {prev[pos % len(prev)], prev[(pos * 7 + 3) % len(prev)]}
            tags = [f"upstream:t{u:03d}" for u in sorted(ups)]
        cells = [("x = 1", ["parameters"]), ("y = x + 1", tags)]
        (root / f"t{i:03d}.ipynb").write_text(json.dumps(notebook(cells)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_lab(root: Path, work: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    settings = work / "settings"
    notify = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notify.parent.mkdir(parents=True)
    notify.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.jpserver_extensions=nbflow.server=True", f"--LabApp.user_settings_dir={settings}",
           f"--LabApp.workspaces_dir={work / 'workspaces'}", "--LabApp.expose_app_in_browser=True"]
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(work / "config"), "JUPYTER_RUNTIME_DIR": str(work / "runtime")}
    log = open(work / "lab.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                return proc, url, token
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not start; see {work / 'lab.log'}") from None
            time.sleep(0.2)


OPEN_AND_WAIT = """async ([path, n]) => {
  const t0 = performance.now();
  const widget = await window.jupyterapp.commands.execute('nbflow:open', {path});
  await new Promise((resolve, reject) => {
    const give_up = setTimeout(() => reject(new Error('nodes did not appear')), 20000);
    const check = () => {
      if (widget.node.querySelectorAll('.nbflow-node').length >= n) { clearTimeout(give_up); resolve(); }
      else requestAnimationFrame(check);
    };
    check();
  });
  const ms = performance.now() - t0;
  const layout = Number(widget.node.querySelector('.nbflow-graph').getAttribute('data-layout-ms'));
  widget.close();
  return [ms, layout];
}"""

WATCH = """([task, state]) => { window.__nbflow_seen = new Promise((resolve, reject) => {
  const node = document.querySelector(`.nbflow-panel .nbflow-node[data-task="${task}"]`);
  if (!node) { reject(new Error('no node ' + task)); return; }
  const give_up = setTimeout(() => reject(new Error('no change of ' + task)), 10000);
  const obs = new MutationObserver(() => {
    if (node.getAttribute('data-state') === state) {
      obs.disconnect(); clearTimeout(give_up); resolve(performance.timeOrigin + performance.now());
    }
  });
  obs.observe(node, {attributes: true, attributeFilter: ['data-state']});
}); }"""


def measure_render(page: Page, path: str, n: int, opens: int) -> tuple[list[float], list[float]]:
    totals, layouts = [], []
    for _ in range(opens):
        ms, layout = page.evaluate(OPEN_AND_WAIT, [path, n])
        totals.append(ms)
        layouts.append(layout)
    return totals, layouts


def measure_changes(page: Page, project: Project, tasks: list[str], changes: int) -> list[float]:
    """Latency from the store commit to the DOM change, in ms, for `changes` task state changes."""
    store = project.store
    run_id = "bench-" + secrets.token_hex(3)
    store.create_run(run_id, project=project.root, trigger="bench", logical_date="2026-01-01", parameters={},
                     selection={}, tasks=tasks)
    page.evaluate("p => window.jupyterapp.commands.execute('nbflow:open', {path: p})", "big")
    page.wait_for_function("id => document.querySelector('.nbflow-panel')?.getAttribute('data-run-id') === id", arg=run_id)
    page.wait_for_timeout(500)  # let the panel settle into its long-poll
    out = []
    for i in range(changes):
        task, state = tasks[(i * 37) % len(tasks)], ("running", "succeeded", "failed")[i % 3]
        page.evaluate(WATCH, [task, state])
        t0 = time.time() * 1000
        store.set_task_state(run_id, task, state)
        seen = page.evaluate("() => window.__nbflow_seen")
        out.append(seen - t0)
        if os.environ.get("NBFLOW_BENCH_VERBOSE"):
            print(f"  {task} -> {state}: {seen - t0:.0f} ms")
        page.wait_for_timeout(150)
    store.finish_run(run_id, "succeeded")
    return out


def graphviz_baseline(root: Path, repeats: int = 3) -> float | None:
    if not shutil.which("dot"):
        return None
    times = []
    with Project(root) as project:
        for _ in range(repeats):
            t0 = time.perf_counter()
            project.graph("svg")
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def row(name: str, values: list[float] | None, goal: float | None) -> str:
    if not values:
        return f"| {name:<52} | {'-':>9} | {'-':>9} | {'-':>8} | {'-':>4} |"
    med, worst = statistics.median(values), max(values)
    goal_s = f"<= {goal:.0f}" if goal else "-"
    ok = ("yes" if med <= goal else "NO") if goal else ""
    return f"| {name:<52} | {med:>9.1f} | {worst:>9.1f} | {goal_s:>8} | {ok:>4} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--opens", type=int, default=7)
    ap.add_argument("--changes", type=int, default=15)
    ap.add_argument("--screenshot", help="save a PNG of the panel showing the big pipeline here")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="nbflow-bench-"))
    big, small = work / "root" / "big", work / "root" / "small"
    generate(big, args.tasks)
    generate(small, 4, width=2)
    tasks = [f"t{i:03d}" for i in range(args.tasks)]
    proc, url, token = start_lab(work / "root", work)
    try:
        with sync_playwright() as p, Project(big) as project:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/lab?token={token}")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('nbflow:open')")
            measure_render(page, "big", args.tasks, 1)  # warm-up: first fetch compiles the notebooks, JIT
            totals, layouts = measure_render(page, "big", args.tasks, args.opens)
            small_totals, _ = measure_render(page, "small", 4, args.opens)
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"{url}/nbflow/api/pipeline?project=big&token={token}") as r:
                r.read()
            fetch_ms = (time.perf_counter() - t0) * 1000
            latencies = measure_changes(page, project, tasks, args.changes)
            if args.screenshot:
                page.screenshot(path=args.screenshot)
                print(f"screenshot: {args.screenshot}")
            browser.close()
        dot_ms = graphviz_baseline(big)
    finally:
        proc.terminate()
        proc.wait(15)
    print(f"\nnbflow panel benchmark: {args.tasks}-task generated pipeline, Chromium headless, "
          f"{args.opens} opens, {args.changes} state changes (ms)\n")
    print(f"| {'measure':<52} | {'median':>9} | {'max':>9} | {'goal':>8} | {'ok':>4} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|{'-' * 10}|{'-' * 6}|")
    print(row(f"open panel -> {args.tasks} nodes in DOM", totals, GOAL_MS))
    print(row("  of which dagre layout + SVG build", layouts, None))
    print(row("  of which GET pipeline (one call, from Python)", [fetch_ms], None))
    print(row("store records state -> node data-state changes", latencies, GOAL_MS))
    print(row("baseline: open panel -> 4 nodes (small pipeline)", small_totals, None))
    print(row(f"baseline: Graphviz dot SVG of the {args.tasks} tasks (CLI)", [dot_ms] if dot_ms else None, None))
    ok = statistics.median(totals) <= GOAL_MS and statistics.median(latencies) <= GOAL_MS
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
