"""The JSON the REST API answers with, shaped from store rows and the compiled pipeline. Pure: no I/O."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..cells import cell_label
from ..project import PipelineState
from ..records import AlertRecord, AttemptRecord, RunDetail, RunRecord, as_json
from ..states import TaskState

ToPath = Callable[[str | None], str | None]  # absolute path -> server-root-relative path (or None)


def as_plain(value: Any) -> Any:
    """Records and enums as plain JSON values."""
    return as_json(value)


def run_summary(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id, "status": run.status, "trigger": run.trigger, "started": run.started_at,
        "ended": run.ended_at, "duration": run.duration, "parameters": dict(run.parameters), "logical_date": run.logical_date,
        "code": {"commit": run.code_commit, "dirty": run.code_dirty, "changed": list(run.code_changed or [])}
        if run.code_commit else None,
    }


def error(a: AttemptRecord | None, message: str | None = None, cell: int | None = None,
          execution_count: int | None = None) -> dict[str, Any] | None:
    """An error as {"cell", "cell_label", "execution_count", "kind", "message", "ename", "evalue"}: the attempt's
    (ename/evalue when a cell raised), or a task's message when it has no attempt (nbflow could not run it)."""
    if a is not None and a.error:
        return {"cell": a.error_cell, "cell_label": cell_label(a.error_cell, a.error_execution_count) or None,
                "execution_count": a.error_execution_count, "kind": a.error_kind, "message": a.error, "ename": a.ename,
                "evalue": a.evalue}
    if message:
        return {"cell": cell, "cell_label": cell_label(cell, execution_count) or None, "execution_count": execution_count,
                "kind": None, "message": message, "ename": None, "evalue": None}
    return None


def pipeline(project: str, state: PipelineState, to_path: ToPath, openable: Callable[[str | None], bool]) -> dict[str, Any]:
    """GET pipeline: the DAG with each task's state in the state's run (all pending without a run)."""
    last = {a.task: a for a in state.attempts}  # the last attempt wins (attempts come oldest first)
    forecast = state.forecast or {}
    expected = forecast.get("tasks", {})
    eta = forecast.get("run") if state.run and (forecast.get("run") or {}).get("run_id") == state.run.id else None
    tasks = []
    for name, task in state.pipeline.tasks.items():
        row = state.tasks.get(name)
        executed = to_path(row.artifact) if row else None
        attempt_ = last.get(name)
        tasks.append({
            "name": name, "path": to_path(task.path), "notebook": task.relpath, "upstream": list(task.upstream),
            "state": state.state(name), "attempts": row.attempts if row else 0,
            "started": row.started_at if row else None, "ended": row.ended_at if row else None,
            "duration": (attempt_.duration if attempt_ else row.duration) if row else None,
            "reason": row.reason if row else None,
            "error": (error(attempt_ if attempt_ and attempt_.error == row.error else None, row.error, row.error_cell,
                            row.error_execution_count) if row else None),
            "executed": executed, "executed_openable": openable(executed), "parameters": list(task.parameters),
            "expected": expected.get(name),  # {"median", "p90", "p95", "samples"} of its last successes, or null
            "expected_end": (eta or {}).get("tasks", {}).get(name),  # while the run runs: when this task should end
            "progress": dict(row.progress) if row and row.progress and state.state(name) == TaskState.RUNNING else None,
        })
    via: dict[tuple[str, str], list[str]] = {}
    for e in state.pipeline.edges:
        via.setdefault((e.upstream, e.downstream), []).append(e.reason)
    run = run_summary(state.run) if state.run else None
    if run is not None:  # the forecast of a running run: its expected end along the critical path
        run["eta"] = None if eta is None else {k: eta[k] for k in ("eta", "remaining", "critical_path", "unknown")}
    return {
        "project": project, "run": run, "parameters": dict(state.parameters),
        "tasks": tasks, "edges": [{"source": u, "target": d, "via": reasons} for (u, d), reasons in via.items()],
        "event_id": state.event_id,
    }


def attempt(a: AttemptRecord, to_path: ToPath, partial: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        "attempt": a.number, "status": a.status, "started": a.started_at, "ended": a.ended_at, "duration": a.duration,
        "error_cell": a.error_cell, "error_cell_label": cell_label(a.error_cell, a.error_execution_count) or None,
        "error": a.error, "error_kind": a.error_kind, "ename": a.ename, "evalue": a.evalue,
        "executed": to_path(a.artifact), "partial": a.artifact in partial,
        "host": a.host, "worker": a.worker, "peak_rss": a.peak_rss, "cpu_seconds": a.cpu_seconds,
        "resources": dict(a.resources) if a.resources else None, "kernel_start": a.kernel_start,
        "kernel_start_ms": a.kernel_start_ms,
    }


def run_detail(detail: RunDetail, notebook_of: Callable[[str], str], to_path: ToPath) -> dict[str, Any]:
    """GET runs/<id>: the run with its tasks and every attempt of each."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for a in detail.attempts:
        by_task.setdefault(a.task, []).append(attempt(a, to_path, detail.partial))
    tasks = [{
        "name": r.task, "state": r.status, "reason": r.reason, "started": r.started_at, "ended": r.ended_at,
        "duration": r.duration, "path": to_path(notebook_of(r.task)), "executed": to_path(r.artifact),
        "attempts": by_task.get(r.task, []),
    } for r in detail.tasks]
    return {**run_summary(detail.run), "selection": dict(detail.run.selection), "tasks": tasks}


def log(a: AttemptRecord, to_path: ToPath) -> dict[str, Any]:
    return {"log": a.log or "", "error": a.error, "error_cell": a.error_cell,
            "error_cell_label": cell_label(a.error_cell, a.error_execution_count) or None, "error_kind": a.error_kind,
            "ename": a.ename, "evalue": a.evalue, "status": a.status, "executed": to_path(a.artifact)}


def compare(found: Mapping[str, Any], to_path: ToPath) -> dict[str, Any]:
    """GET runs/compare: Project.diff's answer with executed notebooks as server-root-relative paths."""
    out = as_json(found)
    for task in out["tasks"]:
        for side in ("a", "b"):
            if task[side] is not None:
                task[side]["executed"] = to_path(task[side]["executed"])
    result: dict[str, Any] = out
    return result


def task_lineage(found: Mapping[str, Any], to_path: ToPath) -> dict[str, Any]:
    """GET lineage?task=: the attempt without its log (it has its own route) or fingerprint (nbflow's own)."""
    lineage = dict(found["task"])
    a: AttemptRecord = lineage["attempt"]
    shown = {k: v for k, v in as_json(a).items() if k not in ("log", "fingerprint")}
    lineage["attempt"] = {**shown, "executed": to_path(a.artifact)}
    return {"task": as_json(lineage)}


def alerts(rows: list[AlertRecord]) -> list[dict[str, Any]]:
    """GET alerts: each alert with its deliveries."""
    out: list[dict[str, Any]] = as_json(rows)
    return out
