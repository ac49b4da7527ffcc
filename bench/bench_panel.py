"""Benchmark of the JupyterLab panel in a real browser (Debian's Chromium), not a test.

1. Render: a generated 300-task pipeline in 10 folders, from running the "Open nbflow pipeline" command (which
   fetches `pipeline`, lays the graph out with dagre and fits it to the canvas) to the fitted drawing in the DOM.
   Median of several opens. Baseline in the same run: the CLI's Graphviz rendering (`Project.graph('svg')`).
2. Legibility: the smallest label on screen (font size times the drawing's scale, in CSS px) when the panel opens
   (folders collapsed into clusters), after one click on a cluster (it expands and zooms to it), and, with every
   folder expanded, after one zoom step at a task; goal: every label shown >= 9 px. Also: every node and edge point
   inside the canvas after Fit.
3. Live update: a task state change recorded straight into the store (nbflow.store API, as the runner does)
   until the browser sees that node's data-state change (MutationObserver), both timed on this machine's clock.

    .venv/bin/python bench/bench_panel.py [--tasks 300] [--folders 10] [--opens 7] [--changes 15] [--screenshots DIR]

NBFLOW_BENCH_VERBOSE=1 prints each state change's latency.
"""
from __future__ import annotations

import argparse
import json
import math
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
GOAL_LABEL_PX = 9.0
REGIONS = ["amer", "emea", "apac", "latam", "nordics", "dach", "benelux", "iberia", "anz", "india", "gulf", "africa"]


def notebook(cells: list[tuple[str, list[str]]]) -> dict:
    return {"cells": [{"cell_type": "code", "metadata": {"tags": tags}, "source": src, "outputs": [], "execution_count": None}
                      for src, tags in cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def layer_upstream(i: int, width: int, count: int, mul: int, add: int) -> list[int]:
    """Task i's one or two upstream tasks, in the layer of `width` before its own (none in the first layer)."""
    layer, pos = divmod(i, width)
    if not layer:
        return []
    prev = range((layer - 1) * width, min(layer * width, count))
    return sorted({prev[pos % len(prev)], prev[(pos * mul + add) % len(prev)]})


def generate(root: Path, n: int, width: int = 12, folders: int = 0) -> None:
    """n notebooks in layers of `width`; each depends on one or two tasks of the layer before (never run).
    With `folders`, the tasks are spread over that many folders (`amer/t003`), each its own chain of layers, and
    every other folder's first layer also waits on the previous folder's first task (edges between clusters)."""
    root.mkdir(parents=True)
    if not folders:
        for i in range(n):
            tags = [f"upstream:t{u:03d}" for u in layer_upstream(i, width, n, 7, 3)]
            cells = [("x = 1", ["parameters"]), ("y = x + 1", tags)]
            (root / f"t{i:03d}.ipynb").write_text(json.dumps(notebook(cells)))
        return
    per, w = n // folders, 6
    for f in range(folders):
        region = REGIONS[f % len(REGIONS)] + ("" if f < len(REGIONS) else str(f))
        (root / region).mkdir()
        for i in range(per):
            tags = [f"upstream:{region}/t{u:03d}" for u in layer_upstream(i, w, per, 5, 1)]
            if i < w and f % 2 and f:
                before = REGIONS[(f - 1) % len(REGIONS)] + ("" if f - 1 < len(REGIONS) else str(f - 1))
                tags = [f"upstream:{before}/t000"]
            cells = [("x = 1", ["parameters"]), ("y = x + 1", tags)]
            (root / region / f"t{i:03d}.ipynb").write_text(json.dumps(notebook(cells)))


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
    const give_up = setTimeout(() => reject(new Error('the graph did not appear')), 20000);
    const check = () => {
      const svg = widget.node.querySelector('.nbflow-svg');
      if (svg && widget.node.querySelector('.nbflow-canvas').hasAttribute('data-zoom') && svg.querySelector('.nbflow-node')) {
        clearTimeout(give_up); requestAnimationFrame(() => resolve());
      } else requestAnimationFrame(check);
    };
    check();
  });
  const ms = performance.now() - t0;
  const layout = Number(widget.node.querySelector('.nbflow-graph').getAttribute('data-layout-ms'));
  widget.close();
  return [ms, layout];
}"""

# The smallest on-screen label (font size x the drawing's scale) among labels inside the canvas, and whether every
# node and edge lies inside the canvas.
LABELS = """(selector) => {
  const panel = document.querySelector('.nbflow-panel');
  const canvas = panel.querySelector('.nbflow-canvas').getBoundingClientRect();
  const inside = r => r.left >= canvas.left - 1 && r.right <= canvas.right + 1 && r.top >= canvas.top - 1 && r.bottom <= canvas.bottom + 1;
  const out = {min: 1e9, shown: 0, total: 0, all_inside: true};
  for (const t of panel.querySelectorAll(selector)) {
    out.total++;
    const m = t.getScreenCTM();
    const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
    const r = t.getBoundingClientRect();
    if (r.right < canvas.left || r.left > canvas.right || r.bottom < canvas.top || r.top > canvas.bottom) continue;
    out.shown++;
    out.min = Math.min(out.min, px);
  }
  // Every node of these labels, and (with the graph fitted) every edge, lies inside the canvas.
  for (const t of panel.querySelectorAll(selector)) {
    if (!inside(t.closest('.nbflow-node').querySelector('rect').getBoundingClientRect())) out.all_inside = false;
  }
  if (selector === '.nbflow-node text') {
    for (const e of panel.querySelectorAll('.nbflow-edge')) {
      if (!inside(e.getBoundingClientRect())) out.all_inside = false;
    }
  }
  return out;
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


def measure_legibility(page: Page, path: str, shots: Path | None) -> dict[str, dict]:
    """Smallest label on screen when opened, after one click on a cluster, and all expanded after one zoom step."""
    page.evaluate("p => window.jupyterapp.commands.execute('nbflow:open', {path: p}).then(() => null)", path)
    page.wait_for_selector(".nbflow-panel .nbflow-canvas[data-zoom]")
    page.wait_for_timeout(300)
    found = {"opened": page.evaluate(LABELS, ".nbflow-node text")}
    if shots:
        page.screenshot(path=str(shots / "bench-300-opened.png"))
    cluster = page.locator(".nbflow-panel .nbflow-cluster").first
    folder = cluster.get_attribute("data-folder")
    cluster.click()
    page.wait_for_selector(f'.nbflow-panel .nbflow-node[data-task^="{folder}/"]')
    page.wait_for_timeout(300)
    found["one click on a cluster"] = page.evaluate(LABELS, f'.nbflow-node[data-task^="{folder}/"] text')
    if shots:
        page.screenshot(path=str(shots / "bench-300-cluster.png"))
    page.click(".nbflow-panel .nbflow-clusters-button")  # expand all (one folder is expanded already), fitted
    page.wait_for_timeout(300)
    found["all expanded, fitted"] = page.evaluate(LABELS, ".nbflow-node text")
    if shots:
        page.screenshot(path=str(shots / "bench-300-expanded.png"))
    box = page.locator('.nbflow-panel .nbflow-node[data-task$="/t015"]').first.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    factor = page.evaluate("() => 9 / (12 * Number(document.querySelector('.nbflow-panel .nbflow-canvas').getAttribute('data-zoom')))")
    page.mouse.wheel(0, -math.log(max(factor * 1.05, 1.0)) / 0.0015)  # one wheel gesture, enough to reach 9 px at the cursor
    page.wait_for_timeout(300)
    found["all expanded, one wheel zoom"] = page.evaluate(LABELS, ".nbflow-node text")
    if shots:
        page.screenshot(path=str(shots / "bench-300-zoomed.png"))
    page.evaluate("() => window.jupyterapp.shell.currentWidget.close()")
    return found


def measure_changes(page: Page, project: Project, tasks: list[str], changes: int) -> list[float]:
    """Latency from the store commit to the DOM change, in ms, for `changes` task state changes."""
    store = project.store
    run_id = "bench-" + secrets.token_hex(3)
    store.create_run(run_id, trigger="bench", logical_date="2026-01-01", parameters={},
                     selection={}, tasks=tasks)
    page.evaluate("p => window.jupyterapp.commands.execute('nbflow:open', {path: p}).then(() => null)", "big")
    page.wait_for_function("id => document.querySelector('.nbflow-panel')?.getAttribute('data-run-id') === id", arg=run_id)
    if page.locator(".nbflow-panel .nbflow-cluster").count():
        page.click(".nbflow-panel .nbflow-clusters-button")  # expand every folder: each task has its own node
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
    ap.add_argument("--folders", type=int, default=10)
    ap.add_argument("--opens", type=int, default=7)
    ap.add_argument("--changes", type=int, default=15)
    ap.add_argument("--screenshots", help="save PNGs of the panel showing the big pipeline in this folder")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="nbflow-bench-"))
    big, flat, small = work / "root" / "big", work / "root" / "flat", work / "root" / "small"
    generate(big, args.tasks, folders=args.folders)
    generate(flat, args.tasks)
    generate(small, 4, width=2)
    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    proc, url, token = start_lab(work / "root", work)
    try:
        with sync_playwright() as p, Project(big) as project:
            tasks = list(project.compile().order)
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/lab?token={token}")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('nbflow:open')")
            measure_render(page, "big", args.tasks, 1)  # warm-up: first fetch compiles the notebooks, JIT
            totals, layouts = measure_render(page, "big", args.tasks, args.opens)
            flat_totals, flat_layouts = measure_render(page, "flat", args.tasks, args.opens)
            small_totals, _ = measure_render(page, "small", 4, args.opens)
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"{url}/nbflow/api/pipeline?project=big&token={token}") as r:
                r.read()
            fetch_ms = (time.perf_counter() - t0) * 1000
            legible = measure_legibility(page, "big", shots)
            latencies = measure_changes(page, project, tasks, args.changes)
            browser.close()
        dot_ms = graphviz_baseline(big)
    finally:
        proc.terminate()
        proc.wait(15)
    print(f"\nnbflow panel benchmark: {args.tasks}-task generated pipeline in {args.folders} folders, Chromium headless, "
          f"1400x900 window, {args.opens} opens, {args.changes} state changes (ms)\n")
    print(f"| {'measure':<52} | {'median':>9} | {'max':>9} | {'goal':>8} | {'ok':>4} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|{'-' * 10}|{'-' * 6}|")
    print(row(f"open panel -> {args.tasks} tasks fitted (folders collapsed)", totals, GOAL_MS))
    print(row("  of which dagre layout + SVG build", layouts, None))
    print(row("  of which GET pipeline (one call, from Python)", [fetch_ms], None))
    print(row(f"open panel -> {args.tasks} tasks, no folders, fitted", flat_totals, GOAL_MS))
    print(row("  of which dagre layout + SVG build", flat_layouts, None))
    print(row("store records state -> node data-state changes", latencies, GOAL_MS))
    print(row("baseline: open panel -> 4 nodes (small pipeline)", small_totals, None))
    print(row(f"baseline: Graphviz dot SVG of the {args.tasks} tasks (CLI)", [dot_ms] if dot_ms else None, None))
    print(f"\n| {'legibility (labels on screen, CSS px)':<40} | {'smallest':>8} | {'shown':>11} | {'goal':>6} | {'ok':>4} |     inside |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 13}|{'-' * 8}|{'-' * 6}|{'-' * 12}|")
    for name, f in legible.items():
        ok_label = "yes" if f["min"] >= GOAL_LABEL_PX else "NO"
        goal = f">= {GOAL_LABEL_PX:.0f}" if name != "all expanded, fitted" else "-"
        print(f"| {name:<40} | {f['min']:>8.1f} | {f['shown']:>4} of {f['total']:>4} | {goal:>6} | "
              f"{ok_label if goal != '-' else '':>4} | {'yes' if f['all_inside'] else 'no':>10} |")
    goals = [legible["opened"], legible["one click on a cluster"]]
    ok = (statistics.median(totals) <= GOAL_MS and statistics.median(latencies) <= GOAL_MS
          and all(f["min"] >= GOAL_LABEL_PX for f in goals) and legible["opened"]["all_inside"])
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
