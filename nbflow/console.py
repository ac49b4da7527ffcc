"""Terminal output for the CLI: tables, live progress, summaries. Presentation only; no logic."""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rich import box
from rich.console import Console
from rich.markup import escape as escape  # re-exported: the CLI escapes its messages with it
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .cells import cell_label, with_cell
from .model import Pipeline
from .provenance import describe
from .records import AttemptRecord, RunDetail, RunRecord
from .resources import format_size
from .states import FINAL, AttemptState, TaskState, WorkState

T = TaskState
STYLE: dict[str, str] = {T.SUCCEEDED: "green", T.SKIPPED: "dim green", T.FAILED: "bold red", T.CHECK_FAILED: "bold yellow",
                         T.UPSTREAM_FAILED: "magenta", T.RUNNING: "cyan", T.QUEUED: "blue", T.PENDING: "dim",
                         T.CANCELLED: "dim red", T.CRASHED: "bold red", T.BLOCKED: "bold magenta",
                         WorkState.INTERRUPTED: "dim red"}
SYMBOL: dict[str, str] = {T.SUCCEEDED: "✓", T.SKIPPED: "=", T.FAILED: "✗", T.CHECK_FAILED: "!", T.UPSTREAM_FAILED: "↯",
                          T.RUNNING: "▶", T.QUEUED: "…", T.CANCELLED: "■", T.CRASHED: "✗", T.BLOCKED: "⊘"}

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def state(status: str) -> str:
    return f"[{STYLE.get(status, '')}]{status}[/]"


def when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def seconds(start: float | None, end: float | None) -> str:
    return f"{end - start:.1f}s" if start and end else "-"


def took(value: float | None) -> str:
    """A duration as people read it: 2.1s, 4m13s, 1h02m."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{int(value // 60)}m{int(value % 60):02d}s"
    return f"{int(value // 3600)}h{int(value % 3600 // 60):02d}m"


def rel(path: str | None) -> str:
    if not path:
        return "-"
    r = os.path.relpath(path)
    return path if r.startswith("..") else r


def print_pipeline(p: Pipeline) -> None:
    """Tasks, their tags and edges, and an order; a note on notebooks that are connected to nothing."""
    console.print(f"[bold]{len(p.tasks)} tasks, {len(p.edges)} edges[/]")
    for i, name in enumerate(p.order, 1):
        t = p.tasks[name]
        ups = f"  [dim]<- {', '.join(t.upstream)}[/]" if t.upstream else ""
        console.print(f"{i:>3}. [bold]{name}[/]  [dim]{t.relpath}[/]{ups}")
        if t.ploomber is not None:
            console.print(f"       {'from':<7}Ploomber declarations ({t.ploomber.origin})")
        if t.paired is not None:
            console.print(f"       {'paired':<7}{escape(os.path.relpath(t.paired, p.root))} (jupytext; the text file is read)")
        for label, values in (("params", t.parameters), ("reads", t.reads), ("writes", t.writes),
                              ("check", [cell_label(c) for c in t.check_cells])):
            for j, value in enumerate(values if label != "params" else [", ".join(values)] if values else []):
                console.print(f"       {label if j == 0 else '':<7}{escape(value)}", soft_wrap=True)
    if p.edges:
        console.print("[bold]edges[/]")
        for e in p.edges:
            console.print(f"  {e.upstream} -> {e.downstream}  [dim]({escape(e.reason)})[/]")
    console.print("[bold]order[/]  " + " -> ".join(p.order))
    loose = p.untagged_loose()
    if loose and len(p.tasks) > 1:
        console.print(f"[yellow]note:[/] {len(loose)} notebook(s) have no nbflow tags and no dependencies: "
                      f"{escape(', '.join(p.tasks[n].relpath for n in loose))}. If they are not tasks of this pipeline "
                      f"(a scratch notebook, one that calls nbflow), exclude them: exclude = [\"scratch/**\"] in nbflow.toml",
                      soft_wrap=True)


def pipeline_json(p: Pipeline) -> str:
    return json.dumps({
        "root": p.root,
        "order": list(p.order),
        "tasks": [{"name": t.name, "notebook": t.relpath, "upstream": list(t.upstream), "reads": list(t.reads),
                   "writes": list(t.writes), "check_cells": list(t.check_cells), "parameters": list(t.parameters),
                   "kernel": t.kernel, "policy": t.policy.__dict__,
                   "ploomber": t.ploomber.origin if t.ploomber else None,
                   "paired": os.path.relpath(t.paired, p.root) if t.paired else None} for t in p.tasks.values()],
        "edges": [{"upstream": e.upstream, "downstream": e.downstream, "reason": e.reason} for e in p.edges],
    }, indent=2)


_R = TypeVar("_R", bound="_BarReporter")


class _Live(ProgressColumn):
    """A column whose text is computed at each refresh (running tasks' current cell and time in it)."""

    def __init__(self, text: Callable[[], str]) -> None:
        super().__init__()
        self.text = text

    def render(self, task: Any) -> Text:
        return Text(self.text(), overflow="ellipsis", no_wrap=True)


class _BarReporter:
    """An event sink with a transient progress bar; lines printed above it stay."""

    def __init__(self, label: str, live: Callable[[], str] | None = None) -> None:
        describe_column = _Live(live) if live else TextColumn("{task.description}")
        self.progress = Progress(SpinnerColumn(), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), describe_column,
                                 console=console, transient=True) if live else Progress(
            SpinnerColumn(), describe_column, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
            transient=True)
        self.bar = self.progress.add_task(label, total=None)

    def __enter__(self: _R) -> _R:
        if console.is_terminal:  # into a pipe or a log file a bar only adds an empty line when it stops
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if console.is_terminal:
            self.progress.__exit__(*exc)


SLOW_HINT = (". A hung notebook runs forever without a timeout: set `timeout` in nbflow.toml's [defaults] "
             "(see the README)")


class RunReporter(_BarReporter):
    """Live progress for a run: a line per state change (with its duration), a bar of finished tasks, and each running
    task's current cell with the time spent in it. Lines about up-to-date tasks are held back: a run where nothing ran
    ends with one line (print_summary's) instead of one per task."""

    def __init__(self) -> None:
        super().__init__("starting", live=self.live_text)
        self.running: dict[str, dict[str, Any]] = {}  # task -> {"started", "cell", "cells", "since"}
        self.held: list[str] = []  # the run's header and its up-to-date lines, until something else happens
        self.quiet = True
        self.eta = ""  # " · ETA 14:05 (~3 min)" from the run's forecast, when its tasks have a history

    def _say(self, line: str) -> None:
        if self.quiet:
            self.quiet = False
            for held in self.held:
                self.progress.console.print(held)
            self.held = []
        self.progress.console.print(line)

    def live_text(self) -> str:
        if not self.running:
            return "waiting" + self.eta
        now = time.time()
        parts = []
        for task, r in sorted(self.running.items()):
            if r.get("cell"):
                parts.append(f"{task}: cell {r['cell']} of {r['cells']} ({took(now - r['since'])})")
            else:
                parts.append(f"{task}: starting ({took(now - r['started'])})")
        return "running " + ", ".join(parts) + self.eta

    def __call__(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "run_started":
            self.progress.update(self.bar, total=len(data["tasks"]))
            n = len(data["tasks"])
            self.held.append(f"run [bold]{data['run_id']}[/]: {n} task{'s' if n != 1 else ''}")
        elif kind == "warning":
            hint = SLOW_HINT if data.get("kind") == "slow" else ""
            self._say(f"[yellow]warning:[/] {escape(data['message'])}{hint}")
        elif kind == "waiting":
            self.progress.update(self.bar, description=f"waiting for run {data['run_id']} (pid {data['pid']}): it holds "
                                                       f"{escape(data['path'])}")
            self.progress.console.print(f"[yellow]waiting[/] for run {data['run_id']} (pid {data['pid']} on {data['host']}), "
                                        f"which holds {escape(data['path'])}; this run starts when it ends")
        elif kind == "eta":
            self.eta = eta_text(data.get("eta"), data.get("remaining"))
        elif kind == "retry":
            self._say(f"  [yellow]↻ {data['task']}[/] attempt {data['attempt']} failed "
                      f"({escape(str(data['error']))}); retrying in {data['delay']:.1f}s")
        elif kind == "task_progress":
            if data["task"] in self.running:
                self.running[data["task"]].update(cell=data["cell"], cells=data["cells"], since=data["since"])
        elif kind == "task":
            self._task(data)


    def _task(self, data: Mapping[str, Any]) -> None:
        task, status = data["task"], data["status"]
        if status == TaskState.RUNNING:
            self.running[task] = {"started": data.get("started_at") or time.time()}
            again = f" (attempt {data['attempt']})" if data.get("attempt", 1) > 1 else ""
            self._say(f"  [cyan]▶ {task}[/]{again}")
        elif status in FINAL:
            self.running.pop(task, None)
            self.progress.advance(self.bar)
            if status == TaskState.SKIPPED:
                line = f"  [{STYLE[status]}]{SYMBOL[status]} {task}[/] up to date"
                if self.quiet:
                    self.held.append(line)
                else:
                    self.progress.console.print(line)
                return
            duration = f" in {took(data['duration'])}" if data.get("duration") is not None else ""
            extra = with_cell(str(data["error"]), data.get("error_cell"), data.get("error_execution_count")) \
                if data.get("error") else data.get("reason") or ""
            self._say(f"  [{STYLE[status]}]{SYMBOL.get(status, ' ')} {task}[/] {status}{duration}"
                      + (f": {escape(str(extra))}" if extra else ""))


def eta_text(eta: float | None, remaining: float | None) -> str:
    """' · ETA 14:05:10 (~3 min)', or '' without a forecast."""
    if not eta:
        return ""
    left = remaining or 0.0
    about = f"{left:.0f} s" if left < 90 else f"{left / 60:.0f} min" if left < 5400 else f"{left / 3600:.1f} h"
    return f" · ETA {dt.datetime.fromtimestamp(eta).strftime('%H:%M:%S')} (~{about})"


def print_summary(summary: Any) -> None:
    """The end of a run: one line when nothing ran, else a table with each task's last attempt's duration."""
    if summary.tasks and summary.ok and all(t.status == "skipped" for t in summary.tasks):
        n = len(summary.tasks)
        console.print(f"{n} task{'s' if n != 1 else ''} up to date, nothing ran")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"run {summary.run_id}: {summary.status}", title_justify="left")
    for col in ("task", "status", "attempts", "took", "detail"):
        table.add_column(col)
    for t in summary.tasks:
        detail = with_cell(t.error, t.error_cell, t.error_execution_count) if t.error else t.reason or ""
        table.add_row(t.task, state(t.status), str(t.attempts or "-"), took(t.seconds) if t.attempts else "-", escape(detail))
    console.print(table)
    if os.path.isdir(summary.artifacts):
        console.print(f"executed notebooks: {rel(summary.artifacts)}")
    console.print(f"details: nbflow show {summary.run_id}")


def print_plan(planned: list[Any]) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="dry run: nothing executed", title_justify="left")
    for col in ("task", "action", "why"):
        table.add_column(col)
    for p in planned:
        table.add_row(p.task, "[cyan]run[/]" if p.action == "run" else "[dim]skip[/]", escape(p.reason))
    console.print(table)


def differing_parameters(runs: list[RunRecord]) -> list[str]:
    """The parameter names whose values are not the same in every listed run (run_id and run_date have columns)."""
    missing = object()
    names = sorted({k for r in runs for k in r.parameters} - {"run_id", "run_date"})
    return [k for k in names if len({json.dumps(r.parameters.get(k, missing), sort_keys=True, default=str)
                                     if k in r.parameters else "\0missing" for r in runs}) > 1]


def print_runs(runs: list[RunRecord], with_project: bool = False) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("run", no_wrap=True)
    if with_project:
        table.add_column("project", no_wrap=True)
    for col in ("status", "trigger", "run_date", "started", "took"):
        table.add_column(col, no_wrap=True)
    params = differing_parameters(runs)
    if params:
        table.add_column("parameters")
    for r in runs:
        started = dt.datetime.fromtimestamp(r.started_at).strftime("%m-%d %H:%M") if r.started_at else "-"
        cells = [r.id] + ([r.project] if with_project else [])
        shown = " ".join(f"{k}={json.dumps(r.parameters[k], default=str)}" for k in params if k in r.parameters)
        table.add_row(*cells, state(r.status), r.trigger, r.logical_date or "-", started, seconds(r.started_at, r.ended_at),
                      *([escape(shown)] if params else []))
    console.print(table if runs else "no runs yet: start one with `nbflow run` (`--all` also lists runs where nothing ran)")


def print_run(detail: RunDetail) -> None:
    run = detail.run
    console.print(f"run [bold]{run.id}[/]  {state(run.status)}  trigger={run.trigger}  run_date={run.logical_date}")
    console.print(f"started {when(run.started_at)}  ended {when(run.ended_at)}  took {seconds(run.started_at, run.ended_at)}"
                  f"  host={run.host} pid={run.pid}")
    params = {k: v for k, v in run.parameters.items() if k not in ("run_id",)}
    console.print("parameters: " + escape(json.dumps(params)))
    code = {"commit": run.code_commit, "dirty": run.code_dirty, "changed": list(run.code_changed or [])}
    console.print("code: " + (escape(describe(code)) if run.code_commit else "not in a git repository"))
    last = {a.task: a for a in detail.attempts}  # oldest first: the last attempt wins
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("task", "status", "tries", "took", "detail"):
        table.add_column(col)
    for t in detail.tasks:
        a = last.get(t.task)
        detail_text = with_cell(t.error, t.error_cell, t.error_execution_count) if t.error else t.reason or ""
        table.add_row(t.task, state(t.status), str(t.attempts or "-"), took(a.duration) if a else "-", escape(detail_text))
    console.print(table)
    if detail.attempts:
        console.print(attempts_table(detail))
    notebooks = [a.artifact for a in detail.attempts if a.artifact]
    if notebooks:
        console.print("executed notebooks:")
        for path in notebooks:
            partial = " [yellow](partial: saved while it ran, never finished)[/]" if path in detail.partial else ""
            console.print(f"  {rel(path)}{partial}", soft_wrap=True)
    retried = [a for a in detail.attempts if a.status not in (AttemptState.SUCCEEDED, AttemptState.RUNNING)]
    if retried:
        console.print("failed attempts:")
        for a in retried:
            console.print(f"  {a.task} #{a.number} {state(a.status)} after {took(a.duration)}: "
                          f"{escape(with_cell(str(a.error or a.status), a.error_cell, a.error_execution_count))}")


def attempts_table(detail: RunDetail) -> Table:
    """Each attempt: where it ran (host, Dask worker), how its kernel started, its peak memory and CPU time, and the limits
    applied."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="attempts", title_justify="left")
    for col in ("task", "#", "status", "ran on", "kernel", "peak memory", "cpu", "limits"):
        table.add_column(col, no_wrap=col != "limits")
    for a in detail.attempts:
        where = a.worker or a.host or "-"
        if a.worker and a.host:
            where = f"{a.worker} ({a.host})"
        cpu = f"{a.cpu_seconds:.1f}s" if a.cpu_seconds is not None else "-"
        table.add_row(a.task, str(a.number), state(a.status), escape(where), kernel_start(a),
                      format_size(a.peak_rss) if a.peak_rss else "-", cpu, escape(describe_limits(a.resources)))
    return table


def describe_limits(resources: Mapping[str, Any] | None) -> str:
    """cores 0,1  gpus 0  memory 512 MiB (rlimit)"""
    if not resources:
        return "-"
    parts = []
    if resources.get("cores"):
        parts.append("cores " + ",".join(str(c) for c in resources["cores"]))
    if resources.get("gpus"):
        parts.append("gpus " + ",".join(str(g) for g in resources["gpus"]))
    if resources.get("memory"):
        how = f" ({resources['memory_by']})" if resources.get("memory_by") else " (not enforced)"
        parts.append(f"memory {format_size(resources['memory'])}{how}")
    return "  ".join(parts) or "-"


def kernel_start(attempt: AttemptRecord | None) -> str:
    """How the attempt's kernel started and how long it took: `fork 61 ms`, `spawn 712 ms`, or `-`."""
    if attempt is None or not attempt.kernel_start:
        return "-"
    took = f" {attempt.kernel_start_ms:.0f} ms" if attempt.kernel_start_ms is not None else ""
    return f"{attempt.kernel_start}{took}"


def print_logs(attempt: AttemptRecord) -> None:
    console.print(f"[bold]{attempt.task}[/] attempt {attempt.number} of run {attempt.run_id}: {state(attempt.status)}")
    console.print(f"executed notebook: {rel(attempt.artifact)}")
    console.rule("output")
    text = attempt.log or ""
    console.print(escape(text) if text.strip() else "(no output)", end="" if text.endswith("\n") else "\n")
    if attempt.error:
        console.rule("error")
        console.print(f"[red]{escape(with_cell(attempt.error, attempt.error_cell, attempt.error_execution_count))}[/]")


def print_lineage(tree: Mapping[str, Any]) -> None:
    if "path" in tree:
        console.print(_tree(Tree(_label(tree["path"])), tree["path"]))
        return
    t = tree["task"]
    attempt: AttemptRecord = t["attempt"]
    root = Tree(f"task [bold]{t['task']}[/], last success: #{attempt.number} in run {attempt.run_id}")
    reads = root.add("[bold]reads[/]")
    for r in t["reads"]:
        _tree(reads.add(_label(r)), r)
    writes = root.add("[bold]writes[/]")
    for w in t["writes"]:
        consumers = ", ".join(f"{c['task']} (run {c['run_id']})" for c in w.get("consumers", [])) or "nobody yet"
        writes.add(_label(w) + f"\n[dim]read by {escape(consumers)}[/]")
    console.print(root)


def _label(node: Mapping[str, Any]) -> str:
    prod = node.get("producer")
    who = f"{prod['task']} #{prod['number']} in run {prod['run_id']}" if prod else "external input"
    more = " [dim](shown above)[/]" if node.get("repeated") else ""
    text = f"[bold]{escape(node['path'])}[/]{more}\n[dim]{node['hash'][:12]} · {_size(node['size'])} · {escape(who)}[/]"
    if prod and not node.get("repeated"):
        params = prod.get("parameters")
        if params is not None:
            shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in sorted(params.items())) or "none"
            text += f"\n[dim]parameters {escape(shown)}[/]"
        if prod.get("code_version"):
            text += f"\n[dim]code {escape(prod['code_version'])}[/]"
    return text


def _size(size: int) -> str:
    n = float(size)
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _tree(branch: Tree, node: Mapping[str, Any]) -> Tree:
    for child in node.get("inputs", []):
        _tree(branch.add(_label(child)), child)
    return branch


def _side(s: Mapping[str, Any] | None) -> str:
    """A task in one run of a diff: status, its attempt's duration, or why it did not run; its error with the cell."""
    if s is None:
        return "[dim](not in this run)[/]"
    text = state(s["status"])
    if s["ran"]:
        text += f" {took(s['duration'])}"
    elif s.get("reason"):
        text += f" [dim]{escape(s['reason'])}[/]"
    if s.get("error"):
        label = f"{s['cell_label']}: " if s.get("cell_label") else ""
        text += f"\n[red]{escape(label + s['error'])}[/]"
    return text


def _file(f: Mapping[str, Any] | None) -> str:
    return "[dim](none)[/]" if f is None else f"{f['hash'][:12]} ({_size(f['size'])})"


def _diff_lines(text: str) -> None:
    for line in text.splitlines():
        style = ("bold" if line.startswith(("---", "+++")) else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "")
        console.print(f"      [{style}]{escape(line)}[/]" if style else f"      {escape(line)}", soft_wrap=True, highlight=False)


def print_diff(d: Mapping[str, Any]) -> None:
    """`nbflow diff`: the two runs, parameters that differ, each task side by side, data and notebook changes."""
    a, b = d["a"], d["b"]
    for name, r in (("a", a), ("b", b)):
        code = describe(r["code"]) if r.get("code") else "not in git"
        console.print(f"[bold]{name}[/] run {r['id']} {state(r['status'])}  run_date {r['run_date']}  took {took(r['duration'])}  "
                      f"code {escape(code)}")
    if d["parameters"]:
        console.print("[bold]parameters[/]")
        for p in d["parameters"]:
            va = "(not set)" if p.get("only_in") == "b" else json.dumps(p["a"], default=str)
            vb = "(not set)" if p.get("only_in") == "a" else json.dumps(p["b"], default=str)
            console.print(f"  {p['name']}: [red]{escape(va)}[/] -> [green]{escape(vb)}[/]")
    else:
        console.print("[bold]parameters[/] the same")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("task", f"a {a['id'][-6:]}", f"b {b['id'][-6:]}"):
        table.add_column(col)
    for t in d["tasks"]:
        table.add_row(t["task"], _side(t["a"]), _side(t["b"]))
    console.print(table)
    changed = [(t["task"], kind, f) for t in d["tasks"] for kind in ("inputs", "outputs") for f in t[kind]]
    if changed:
        console.print("[bold]data that differs[/]")
        for task, kind, f in changed:
            console.print(f"  {task} {'reads' if kind == 'inputs' else 'writes'} [bold]{escape(f['path'])}[/]: "
                          f"{_file(f['a'])} -> {_file(f['b'])}", soft_wrap=True)
    for t in d["tasks"]:
        nb = t.get("notebook")
        if nb is None:
            continue
        console.rule(f"{t['task']}: {len(nb['cells'])} cell(s) differ, {nb['unchanged']} the same", align="left")
        for c in nb["cells"]:
            where = c["a"] if c["change"] == "removed" else c["b"]
            if c["change"] == "modified" and c["a"] != c["b"]:
                where = f"{c['a']} -> {c['b']}"
            console.print(f"  [bold]{escape(where or '?')}[/] {c['change']}")
            if c["source"]:
                console.print("    [dim]source[/]")
                _diff_lines(c["source"])
            if c["outputs"]:
                console.print("    [dim]output[/]")
                _diff_lines(c["outputs"])
            for r in c["rich"]:
                console.print(f"    [dim]{escape(r['mime'])}[/] changed: {(r['a'] or '(none)')[:12]} -> {(r['b'] or '(none)')[:12]}")


def print_diagnostics(info: Mapping[str, Any]) -> None:
    for key, value in info.items():
        if key == "versions":
            console.print("versions: " + ", ".join(f"{k} {v}" for k, v in value.items()))
        elif key == "warnings":
            for w in value:
                console.print(f"[yellow]warning:[/] {escape(w)}")
        else:
            console.print(f"{key}: {escape(', '.join(value) if isinstance(value, list) else str(value))}")


# scheduling

def _short(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S") if ts else "-"


def print_schedules(rows: list[dict[str, Any]], status: Mapping[str, Any] | None = None) -> None:
    if status is not None:
        holder = status.get("holder")
        if status.get("running") and holder:
            console.print(f"scheduler: running (pid {holder['pid']} on {holder['host']})")
        else:
            console.print("scheduler: [yellow]not running[/] (start it with `nbflow scheduler`)")
    if not rows:
        console.print("no schedules: declare [schedules.NAME] in nbflow.toml or run `nbflow schedule add NAME --cron ...`")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("schedule", "cron", "next fire", "state", "last slot", "policy"):
        table.add_column(col)
    for r in rows:
        last = r["last_slot"]
        last_text = f"{last['run_date']} {state(last['status'])}" if last else "-"
        stateword = "[yellow]paused[/]" if r["paused"] else "[green]active[/]"
        source = "nbflow.toml" if r["source"] == "config" else "cli"
        words = f"\n{escape(r['cron_description'])}" if r.get("cron_description") else ""
        table.add_row(r["name"], f"{escape(r['cron'])}{words}\n[dim]{r['timezone']}[/]", r["next_fire"] or "-",
                      f"{stateword}\n[dim]{source}[/]", last_text, f"catchup {r['catchup']}\n{r['overlap']}, max {r['max_concurrent']}"
                      + (f"\nsla {r['sla'] / 60:g} min" if r.get("sla") else "") + (f"\nalert {r['alert']}" if r.get("alert") else ""))
    console.print(table)
    for r in rows:
        if r.get("cron_warning"):
            console.print(f"[yellow]warning:[/] schedule {r['name']}: {escape(r['cron_warning'])}", soft_wrap=True)


def print_sensors(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("sensor", "glob", "parameter", "triggered", "waiting", "last file"):
        table.add_column(col)
    for r in rows:
        last = r["files"][-1] if r["files"] else None
        table.add_row(r["name"], escape(r["glob"]), r["parameter"], str(len(r["files"])), str(len(r["pending"])),
                      f"{escape(last['path'])} {state(last['status'])}" if last else "-")
    console.print(table)


def print_slots(rows: list[dict[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("schedule", "run_date", "trigger", "status", "run", "claimed", "detail"):
        table.add_column(col, no_wrap=col != "detail")
    for r in rows:
        table.add_row(r["schedule"], r["run_date"], r["trigger"], state(r["status"]), r["run_id"] or "-", _short(r["claimed_at"]),
                      escape(r["reason"] or ""))
    console.print(table if rows else "no slots recorded yet")


class SchedulerReporter:
    """One timestamped line per thing the scheduler does."""

    def __call__(self, kind: str, data: Mapping[str, Any]) -> None:
        text = self.describe(kind, data)
        if text:
            console.print(f"[dim]{dt.datetime.now().strftime('%H:%M:%S')}[/] {text}", soft_wrap=True)

    @staticmethod
    def describe(kind: str, d: Mapping[str, Any]) -> str | None:
        what = (f"[bold]{d['schedule']}[/] slot {d['run_date']}" if "schedule" in d
                else f"[bold]{d['sensor']}[/] file {escape(str(d.get('path')))}" if "sensor" in d else "")
        reason = f": {escape(str(d['reason']))}" if d.get("reason") else ""
        if kind == "scheduler_started":
            return f"scheduler started (pid {d['pid']}), store {rel(d['store'])}"
        if kind == "leader":
            return "holding the store's lease: firing schedules and watching sensors"
        if kind == "standby":
            return f"[yellow]standby[/]: {escape(d['message'])}; taking over when it stops"
        if kind == "lease_lost":
            return "[yellow]lost the lease[/] to another scheduler: firing nothing more"
        if kind == "slot_fired":
            return f"[cyan]▶ {what}[/] fired {d['late']:.2f}s after its time"
        if kind in ("slot_skipped", "slot_queued", "file_queued"):
            return f"[yellow]{'=' if kind == 'slot_skipped' else '…'} {what}[/] {kind.split('_')[1]}{reason}"
        if kind == "file_sensed":
            return f"[cyan]▶ {what}[/] is complete ({d['late']:.2f}s after its last write)"
        if kind == "dequeued":
            return f"[cyan]▶ {what}[/] {escape(d['reason'])}"
        if kind == "run_started":
            return f"  {what}: run {d['run_id']} started (trigger {d['trigger']})"
        if kind == "run_resumed":
            return f"  {what}: resuming run {d['run_id']}"
        if kind == "run_finished":
            status = d["status"]
            return f"[{STYLE.get(status, '')}]{SYMBOL.get(status, '·')} {what}[/] {status} (run {d['run_id'] or '-'}){reason}"
        if kind == "run_waiting":
            return f"[yellow]… {what}[/] waits{reason}"
        if kind == "run_interrupted":
            return f"[red]■ {what}[/] interrupted: the next scheduler resumes it"
        if kind == "recovered":
            return f"[yellow]↻ {what}[/] left by a stopped scheduler: {d['action']}"
        if kind == "stopping":
            return f"stopping: waiting up to {d['timeout']:.0f}s for {d['running']} run(s) (signal again to cancel them now)"
        if kind == "stopped":
            return "stopped" + (f"; {d['interrupted']} run(s) interrupted, resumed by the next scheduler" if d["interrupted"] else "")
        if kind == "error":
            return f"[red]error:[/] {escape(d['message'])}"
        return None


class BackfillReporter(_BarReporter):
    """A progress bar over the slots, and a line per finished slot."""

    def __init__(self) -> None:
        super().__init__("backfill")

    def __call__(self, kind: str, d: Mapping[str, Any]) -> None:
        if kind == "backfill_started":
            self.progress.update(self.bar, total=d["total"], description=f"backfill {d['schedule']}")
            self.progress.console.print(f"backfill [bold]{d['schedule']}[/]: {d['total']} slots, {d['concurrency']} at a time")
        elif kind == "slot_started":
            self.progress.console.print(f"  [cyan]▶ {d['run_date']}[/] run {d['run_id']}")
        elif kind == "slot_done":
            self.progress.advance(self.bar)
            status = d["status"]
            shown = status.removeprefix("already_")
            extra = " (already recorded: skipped)" if status.startswith("already_") else ""
            reason = f": {escape(str(d['reason']))}" if d.get("reason") and not status.startswith("already_") else ""
            self.progress.console.print(f"  [{STYLE.get(shown, '')}]{SYMBOL.get(shown, '·')} {d['run_date']}[/] {shown}{extra}"
                                        f" run {d['run_id'] or '-'}{reason}")


def print_backfill(summary: Any) -> None:
    counts: dict[str, int] = {}
    for s in summary.slots:
        counts[s.status] = counts.get(s.status, 0) + 1
    parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items())) or "no slots in that range"
    console.print(f"backfill {summary.schedule}: {parts}")


# operations

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
DELIVERY_STYLE = {"sent": "green", "failed": "bold red", "pending": "yellow"}


def print_alerts(rows: list[Any]) -> None:
    """Alerts, newest first: one line each, then a line per delivery (target, status, attempts, error)."""
    if not rows:
        console.print("no alerts yet ([alerts] in nbflow.toml routes them: see the README's Alerts section)")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("when", "severity", "alert", "delivery"):
        table.add_column(col, no_wrap=col in ("when", "severity"))
    for a in rows:
        if a.outcome == "routed":
            lines = []
            for d in a.deliveries:
                tries = f", {d.attempts} attempt{'s' if d.attempts != 1 else ''}" if d.attempts else ""
                err = f": {escape(d.error)}" if d.error and d.status != "sent" else ""
                lines.append(f"[{DELIVERY_STYLE.get(d.status, '')}]{d.status}[/] {escape(d.target)}{tries}{err}")
            delivery = "\n".join(lines) or "-"
        else:
            delivery = f"[dim]{a.outcome.replace('_', ' ')}[/]"
        what = escape(a.title) + (f"\n[dim]run {a.run_id}[/]" if a.run_id else "")
        table.add_row(_short(a.created_at), f"[{SEVERITY_STYLE.get(a.severity, '')}]{a.severity}[/]", what, delivery)
    console.print(table)


def print_breakers(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("no circuit breakers: tag a cell `uses:NAME` to guard a task's outside service (see the README)")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("breaker", "state", "failures", "opened", "next probe", "used by", "last error"):
        table.add_column(col, no_wrap=col not in ("last error", "used by"))
    style = {"closed": "green", "open": "bold red", "half_open": "yellow"}
    for b in rows:
        state = str(b["state"])
        table.add_row(b["name"], f"[{style.get(state, '')}]{state}[/]", f"{b['failures']}/{b['threshold']}",
                      _short(b["opened_at"]), _short(b["next_probe"]), escape(", ".join(b["used_by"]) or "-"),
                      escape(b["last_error"] or "-"))
    console.print(table)
