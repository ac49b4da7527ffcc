"""The pipeline inside a notebook (classic Notebook, VS Code, JupyterLab): `nbflow.widget(".")`.

The same graph as the JupyterLab panel, coloured by task state and kept live by a background thread that
polls the store's newest event id (one `SELECT max(id)`) and redraws when it moves. The drawing is a
plain SVG laid out here (columns by depth in the DAG), so it needs neither Graphviz nor a browser-side
extension: an `ipywidgets.HTML` shows it anywhere ipywidgets work.
"""
from __future__ import annotations

import html
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from .model import Pipeline
from .project import PipelineState, Project
from .records import RunRecord

# The panel's palette (labextension/style/base.css), so both views read the same.
STATE_FILL = {
    "pending": "#9e9e9e", "queued": "#b0bec5", "running": "#1e88e5", "succeeded": "#43a047", "failed": "#e53935",
    "check_failed": "#fb8c00", "upstream_failed": "#ec407a", "skipped": "#ffffff", "cancelled": "#546e7a",
    "blocked": "#8e24aa",  # a circuit breaker is open (issue 13; the panel's palette has no colour for it yet)
}
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 168, 34, 56, 24, 8
PAD_TOP = 28  # room for edges that arc over a column
LATEST = "latest"

_STYLE = """<style>
.nbflow-w svg text { font: 12px sans-serif; }
.nbflow-w .node text { fill: #fff; }
.nbflow-w .node[data-state='skipped'] rect { stroke: #43a047; stroke-width: 2px; }
.nbflow-w .node[data-state='skipped'] text { fill: #1b5e20; }
.nbflow-w .node[data-state='running'] rect { animation: nbflow-w-pulse 1s ease-in-out infinite; }
@keyframes nbflow-w-pulse { 0%, 100% { opacity: 1; } 50% { opacity: 0.45; } }
.nbflow-w .legend span { display: inline-block; padding: 0 6px; margin: 0 4px 4px 0; border-radius: 8px; color: #fff;
  font: 11px sans-serif; }
</style>"""


def layout(pipeline: Pipeline) -> dict[str, tuple[float, float]]:
    """Top-left corner of each node: one column per depth (longest path from a source), rows ordered to follow upstream."""
    depth: dict[str, int] = {}
    index = {name: i for i, name in enumerate(pipeline.order)}
    for name in pipeline.order:  # topological: every upstream task has its depth already
        depth[name] = 1 + max((depth[u] for u in pipeline.tasks[name].upstream), default=-1)
    columns: dict[int, list[str]] = {}
    for name in pipeline.order:
        columns.setdefault(depth[name], []).append(name)
    row: dict[str, float] = {}
    for d in sorted(columns):
        def centre(name: str) -> float:
            ups = [row[u] for u in pipeline.tasks[name].upstream if u in row]
            return sum(ups) / len(ups) if ups else float("inf")

        for i, name in enumerate(sorted(columns[d], key=lambda n: (centre(n), index[n]))):
            row[name] = i
    return {n: (PAD + depth[n] * (NODE_W + GAP_X), PAD_TOP + row[n] * (NODE_H + GAP_Y)) for n in pipeline.order}


def _label(name: str) -> str:
    return name if len(name) <= 22 else "…" + name[-21:]


def svg(pipeline: Pipeline, states: Mapping[str, str]) -> str:
    """The DAG as SVG: nodes (data-task, data-state) coloured by state, edges as curves, dashed for upstream: tags."""
    pos = layout(pipeline)
    width = max((x for x, _ in pos.values()), default=0) + NODE_W + PAD
    height = max((y for _, y in pos.values()), default=0) + NODE_H + PAD
    reasons: dict[tuple[str, str], list[str]] = {}
    for e in pipeline.edges:
        reasons.setdefault((e.upstream, e.downstream), []).append(e.reason)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}">',
             '<defs><marker id="nbflow-w-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#90a4ae"/></marker></defs>']
    for (up, down), why in reasons.items():
        (x1, y1), (x2, y2) = pos[up], pos[down]
        sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
        mid = (sx + tx) / 2
        if pos[down][0] - pos[up][0] > NODE_W + GAP_X:  # skips a column: arc over the nodes in between
            lift = NODE_H
            bend = f"C{sx + GAP_X:.0f},{sy - lift:.0f} {tx - GAP_X:.0f},{ty - lift:.0f}"
        else:
            bend = f"C{mid:.0f},{sy:.0f} {mid:.0f},{ty:.0f}"
        dash = ' stroke-dasharray="4 3"' if why == ["upstream tag"] else ""
        parts.append(f'<path class="edge" data-source="{html.escape(up)}" data-target="{html.escape(down)}" '
                     f'd="M{sx:.0f},{sy:.0f} {bend} {tx:.0f},{ty:.0f}" fill="none" '
                     f'stroke="#90a4ae" stroke-width="1.3"{dash} marker-end="url(#nbflow-w-arrow)">'
                     f'<title>{html.escape(", ".join(why))}</title></path>')
    for name, (x, y) in pos.items():
        state = states.get(name, "pending")
        fill = STATE_FILL.get(state, STATE_FILL["pending"])
        tip = html.escape(f"{pipeline.tasks[name].relpath}: {state}")
        parts.append(f'<g class="node" data-task="{html.escape(name)}" data-state="{state}"><title>{tip}</title>'
                     f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}"/>'
                     f'<text x="{x + 10:.0f}" y="{y + NODE_H / 2 + 4:.0f}">{html.escape(_label(name))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def legend() -> str:
    spans = []
    for state, fill in STATE_FILL.items():
        style = f"background:{fill}" + (";color:#1b5e20;border:1px solid #43a047" if state == "skipped" else "")
        spans.append(f'<span style="{style}">{state.replace("_", " ")}</span>')
    return f'<div class="legend">{"".join(spans)}</div>'


def run_line(run: RunRecord | None, states: Mapping[str, str]) -> str:
    """One line above the graph: which run, its status, and how many tasks are in each state."""
    if run is None:
        return "<b>no run yet</b>: all tasks pending"
    counts: dict[str, int] = {}
    for s in states.values():
        counts[s] = counts.get(s, 0) + 1
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started_at)) if run.started_at else "-"
    summary = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
    return (f'run <b>{html.escape(run.id)}</b> <span data-status="{html.escape(run.status)}">{html.escape(run.status)}'
            f'</span> · {html.escape(run.trigger)} · started {started} · {html.escape(summary)}')


class PipelineWidget(widgets.VBox):  # type: ignore[misc]  # ipywidgets has no type hints
    """The project's DAG with live task states and a run picker. Stop following the store with `close()`."""

    def __init__(self, project: Project, run_id: str | None = None, interval: float = 0.5) -> None:
        self.project = project
        self.interval = interval
        self.picker = widgets.Dropdown(description="Run", options=[(f"{LATEST} run", LATEST)], value=LATEST,
                                       layout=widgets.Layout(width="auto"))
        self.header = widgets.HTML()
        self.graph = widgets.HTML()
        super().__init__([widgets.HBox([self.picker, self.header]), self.graph])
        self._lock = threading.RLock()
        self._updating = False  # set while refresh() itself changes the picker
        self._stop = threading.Event()
        self._seen = -1
        self.refresh()
        if run_id is not None:
            self.picker.value = self.project.show(run_id).run.id
        self.picker.observe(self._picked, names="value")
        self._thread = threading.Thread(target=self._follow, name="nbflow-widget", daemon=True)
        self._thread.start()

    @property
    def following(self) -> bool:
        """Whether the background thread still polls the store."""
        return self._thread.is_alive()

    @property
    def seen_event_id(self) -> int:
        """The newest store event the drawing reflects (-1 until the background thread first looked)."""
        return self._seen

    def refresh(self) -> None:
        """Redraw from the store now: the run list, the chosen run's states, the graph."""
        with self._lock:
            runs = self.project.runs(limit=50)
            options = [(f"{LATEST} run", LATEST)] + [(f"{r.id} · {r.status}", r.id) for r in runs]
            if self.picker.options != tuple(options):
                chosen = self.picker.value
                self._updating = True
                try:
                    self.picker.options = options
                    self.picker.value = chosen if any(v == chosen for _, v in options) else LATEST
                finally:
                    self._updating = False
            try:
                state = self.project.pipeline_state(None if self.picker.value == LATEST else self.picker.value)
            except Exception as e:  # noqa: BLE001 - a notebook being edited may not compile: say so, keep following
                self.graph.value = f'<div class="nbflow-w"><pre>{html.escape(str(e))}</pre></div>'
                return
            self.show(state)

    def show(self, state: PipelineState) -> None:
        """Draw one pipeline state: the header line and the graph."""
        states = {name: state.state(name) for name in state.pipeline.tasks}
        self.header.value = run_line(state.run, states)
        self.graph.value = f'<div class="nbflow-w" style="overflow:auto">{_STYLE}{legend()}{svg(state.pipeline, states)}</div>'

    def _picked(self, change: Any) -> None:
        if not self._updating:
            self.refresh()

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                event_id = self.project.last_event_id()
                if event_id != self._seen:
                    self._seen = event_id
                    self.refresh()
            except Exception:  # noqa: BLE001 - a transient store error must not end live updates; retry next tick
                continue

    def close(self) -> None:
        """Stop following the store and close the widget."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        super().close()


def widget(project: Project | str | os.PathLike[str] = ".", run_id: str | None = None, interval: float = 0.5) -> PipelineWidget:
    """An ipywidgets view of a project's DAG with live task states (the latest run, or `run_id`); `close()` stops it."""
    return PipelineWidget(project if isinstance(project, Project) else Project(project), run_id=run_id, interval=interval)
