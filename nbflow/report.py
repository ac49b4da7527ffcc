"""One self-contained HTML file about a run, for a reviewer without Jupyter: it opens from disk and loads nothing.

Graph (the widget's SVG layout, coloured by state), a timeline of the attempts, parameters, trigger, code version, each
task's status and duration against its usual duration, errors with their cell, the lineage table, and every executed
notebook rendered by nbconvert (JupyterLab's look, figures inline) in a frame of its own, so its styles stay its own.
Pure apart from reading the executed notebooks it is given.
"""
from __future__ import annotations

import datetime as dt
import html
import os
from collections.abc import Mapping
from typing import Any

from .cells import cell_label
from .model import Pipeline
from .provenance import describe
from .records import AttemptRecord, RunDetail

TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
Versions = Mapping[str, list[dict[str, Any]]]
_CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #212121; margin: 0 auto;
  max-width: 1200px; padding: 16px 24px 64px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e0e0e0; }
table { border-collapse: collapse; margin: 4px 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee;
  text-align: left; vertical-align: top; } th { color: #616161; font-weight: 600; }
code, .mono { font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.state { display: inline-block; padding: 0 7px; border-radius: 9px; color: #fff; font-size: 12px; }
.muted { color: #757575; } .slow { color: #c62828; font-weight: 600; } .err { color: #b71c1c; }
nav a { margin-right: 14px; } details { margin: 10px 0; } summary { cursor: pointer; font-weight: 600; }
iframe.nb { width: 100%; height: 600px; border: 1px solid #e0e0e0; border-radius: 4px; }
"""
_FIT = """function nbflowFit(frame) {
  var doc = frame.contentDocument;
  if (doc && doc.documentElement) { frame.style.height = (doc.documentElement.scrollHeight + 24) + "px"; }
}"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{int(value // 60)} m {int(value % 60)} s"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _anchor(task: str) -> str:
    return "task-" + "".join(c if c.isalnum() else "-" for c in task)


def _state(status: str) -> str:
    from .widgets import STATE_FILL

    fill = STATE_FILL.get(status, "#9e9e9e")
    style = f"background:{fill}" + (";color:#1b5e20;border:1px solid #43a047" if status == "skipped" else "")
    return f'<span class="state" style="{style}">{_e(status)}</span>'


def render(project: str, detail: RunDetail, pipeline: Pipeline, usual: Mapping[str, float], io: Mapping[str, Versions],
           notebooks: Mapping[str, str]) -> str:
    """The report page. `usual`: each task's median duration before this run; `io`: what each task's attempt (or the
    attempt it reused) read and wrote; `notebooks`: each task's executed notebook on disk."""
    run = detail.run
    title = f"nbflow run {run.id}"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>",
             f"<style>{_CSS}</style><script>{_FIT}</script></head><body>",
             f"<h1>{_e(project)}: run <span class='mono'>{_e(run.id)}</span> {_state(run.status)}</h1>",
             "<nav><a href='#graph'>graph</a><a href='#timeline'>timeline</a><a href='#tasks'>tasks</a>"
             "<a href='#lineage'>lineage</a><a href='#notebooks'>executed notebooks</a></nav>",
             _summary(detail), _graph(detail, pipeline), _timeline(detail), _tasks(detail, usual),
             _lineage(detail, io), _notebooks(detail, notebooks),
             f"<p class='muted'>Written by nbflow on {_when(dt.datetime.now().timestamp())}.</p></body></html>"]
    return "\n".join(parts)


def _summary(detail: RunDetail) -> str:
    run = detail.run
    code = {"commit": run.code_commit, "dirty": run.code_dirty, "changed": list(run.code_changed or [])} if run.code_commit else None
    rows = [("trigger", _e(run.trigger) + (f" (schedule {_e(run.schedule)})" if run.schedule else "")),
            ("run_date", _e(run.logical_date)), ("started", _when(run.started_at)), ("ended", _when(run.ended_at)),
            ("took", _secs(run.duration)), ("host", f"{_e(run.host)} (pid {_e(run.pid)})"),
            ("code version", _e(describe(code)) if code else "not in a git repository: each task's code is identified "
                                                               "by the hash of its code cells (see lineage)")]
    if run.resumed_from:
        rows.append(("resumed from", _e(run.resumed_from)))
    params = "".join(f"<tr><td class='mono'>{_e(k)}</td><td class='mono'>{_e(repr(v))}</td></tr>"
                     for k, v in sorted(run.parameters.items()))
    return ("<h2 id='summary'>Run</h2><table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
            + "</table><h2 id='parameters'>Parameters</h2><table><tr><th>name</th><th>value</th></tr>" + params + "</table>")


def _graph(detail: RunDetail, pipeline: Pipeline) -> str:
    from .widgets import _STYLE, legend, svg

    states = {t.task: str(t.status) for t in detail.tasks}
    return f"<h2 id='graph'>Graph</h2><div class='nbflow-w'>{_STYLE}{legend()}{svg(pipeline, states)}</div>"


def _timeline(detail: RunDetail) -> str:
    """One bar per attempt, on the run's clock."""
    from .widgets import STATE_FILL

    attempts = [a for a in detail.attempts if a.started_at]
    if not attempts:
        return "<h2 id='timeline'>Timeline</h2><p class='muted'>No task ran in this run: every task was up to date.</p>"
    start = min(a.started_at or 0.0 for a in attempts)
    end = max((a.ended_at or a.started_at or 0.0) for a in attempts)
    span = max(end - start, 0.001)
    width, label_w, row_h = 900, 180, 22
    scale = (width - label_w - 70) / span
    rows = []
    for i, a in enumerate(attempts):
        x = label_w + ((a.started_at or start) - start) * scale
        w = max(2.0, ((a.ended_at or end) - (a.started_at or start)) * scale)
        y = 24 + i * row_h
        fill = STATE_FILL.get(str(a.status), "#9e9e9e")
        rows.append(f"<text x='4' y='{y + 14}'>{_e(a.task)} #{a.number}</text>"
                    f"<rect x='{x:.1f}' y='{y + 3}' width='{w:.1f}' height='{row_h - 6}' rx='3' fill='{fill}'>"
                    f"<title>{_e(a.task)} attempt {a.number}: {_e(a.status)}, {_secs(a.duration)}</title></rect>"
                    f"<text x='{x + w + 4:.1f}' y='{y + 14}' fill='#616161'>{_secs(a.duration)}</text>")
    ticks = []
    for k in range(6):
        t = span * k / 5
        x = label_w + t * scale
        ticks.append(f"<line x1='{x:.1f}' y1='16' x2='{x:.1f}' y2='{24 + len(attempts) * row_h}' stroke='#eeeeee'/>"
                     f"<text x='{x:.1f}' y='12' text-anchor='middle' fill='#9e9e9e'>{_secs(t)}</text>")
    height = 30 + len(attempts) * row_h
    return (f"<h2 id='timeline'>Timeline</h2><svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"font-family='sans-serif' font-size='12'>{''.join(ticks)}{''.join(rows)}</svg>")


def _tasks(detail: RunDetail, usual: Mapping[str, float]) -> str:
    by_task: dict[str, list[AttemptRecord]] = {}
    for a in detail.attempts:
        by_task.setdefault(a.task, []).append(a)
    rows = []
    for t in detail.tasks:
        attempts = by_task.get(t.task, [])
        last = attempts[-1] if attempts else None
        took = last.duration if last else None
        median = usual.get(t.task)
        ratio = ""
        if took is not None and median:
            factor = took / median
            ratio = f"<span class='{'slow' if factor >= 2 else 'muted'}'>{factor:.1f}×</span>"
        error = (last.error if last and last.error else None) or t.error
        cell = last.error_cell if last and last.error else t.error_cell
        count = last.error_execution_count if last and last.error else t.error_execution_count
        label = cell_label(cell, count)
        detail_html = (f"<span class='err'>{_e(label + ': ' if label else '')}{_e(error)}</span>" if error
                       else f"<span class='muted'>{_e(t.reason or '')}</span>")
        link = f"<a href='#{_anchor(t.task)}'>{_e(t.task)}</a>" if t.artifact and attempts else _e(t.task)
        rows.append(f"<tr><td>{link}</td><td>{_state(t.status)}</td><td>{len(attempts) or '-'}</td><td>{_secs(took)}</td>"
                    f"<td>{_secs(median)}</td><td>{ratio}</td><td>{detail_html}</td></tr>")
    return ("<h2 id='tasks'>Tasks</h2><table><tr><th>task</th><th>status</th><th>attempts</th><th>took</th>"
            "<th>usual (median)</th><th></th><th>error or reason</th></tr>" + "".join(rows) + "</table>")


def _lineage(detail: RunDetail, io: Mapping[str, Versions]) -> str:
    rows = []
    for t in detail.tasks:
        found = io.get(t.task)
        if not found:
            continue
        for direction in ("reads", "writes"):
            for v in found.get(direction, []):
                producer = v.get("producer")
                who = (f"{_e(producer['task'])} #{producer['number']} in run <span class='mono'>{_e(producer['run_id'])}</span>"
                       if producer else "<span class='muted'>external input</span>")
                rows.append(f"<tr><td>{_e(t.task)}</td><td>{direction[:-1]}</td><td class='mono'>{_e(v['path'])}</td>"
                            f"<td class='mono' title='{_e(v['hash'])}'>{_e(v['hash'][:12])}</td><td>{_size(v['size'])}</td>"
                            f"<td>{who}</td></tr>")
    if not rows:
        return "<h2 id='lineage'>Lineage</h2><p class='muted'>No task of this run declared reads: or writes:.</p>"
    return ("<h2 id='lineage'>Lineage</h2><table><tr><th>task</th><th></th><th>path</th><th>sha256</th><th>size</th>"
            "<th>produced by</th></tr>" + "".join(rows) + "</table>")


def _notebooks(detail: RunDetail, notebooks: Mapping[str, str]) -> str:
    """Each executed notebook (of a task that ran in this run) through nbconvert, in a frame of its own."""
    from .executors.attempt import import_nbformat

    import_nbformat()
    from nbconvert import HTMLExporter

    ran = {a.task for a in detail.attempts}
    exporter = HTMLExporter(template_name="nbflow_report", extra_template_basedirs=[TEMPLATES])  # type: ignore[no-untyped-call]
    parts = ["<h2 id='notebooks'>Executed notebooks</h2>"]
    for t in detail.tasks:
        path = notebooks.get(t.task)
        if t.task not in ran or not path:
            continue
        body, _ = exporter.from_filename(path)
        parts.append(f"<details open id='{_anchor(t.task)}'><summary>{_e(t.task)} {_state(t.status)} "
                     f"<span class='muted mono'>{_e(os.path.basename(path))}</span></summary>"
                     f"<iframe class='nb' title='{_e(t.task)}' onload='nbflowFit(this)' srcdoc=\"{html.escape(body, quote=True)}\">"
                     "</iframe></details>")
    if len(parts) == 1:
        parts.append("<p class='muted'>No notebook ran in this run.</p>")
    return "".join(parts)
