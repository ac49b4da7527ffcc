"""The JSON the REST API answers with, shaped from store rows and the compiled pipeline. Pure: no I/O."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..model import Pipeline

ToPath = Callable[[str | None], str | None]  # absolute path -> server-root-relative path (or None)

_CHECK_PREFIX = re.compile(r"^check cell \d+ failed: ")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*): ?(.*)$", re.DOTALL)


def duration(started: float | None, ended: float | None) -> float | None:
    return round(ended - started, 3) if started is not None and ended is not None else None


def run_summary(run: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": run["id"], "status": run["status"], "trigger": run["trigger"], "started": run["started_at"],
        "ended": run["ended_at"], "duration": duration(run["started_at"], run["ended_at"]),
        "parameters": run["parameters"], "logical_date": run["logical_date"],
    }


def error(message: str | None, cell: int | None, kind: str | None) -> dict[str, Any] | None:
    """An attempt's error as {"cell", "kind", "message", "ename", "evalue"}; ename/evalue when it was an exception."""
    if not message:
        return None
    ename, evalue = None, message
    if kind in ("exception", "check", None):
        found = _EXCEPTION.match(_CHECK_PREFIX.sub("", message))
        if found and " " not in found.group(1):
            ename, evalue = found.group(1), found.group(2)
    return {"cell": cell, "kind": kind, "message": message, "ename": ename, "evalue": evalue}


def pipeline(project: str, pipe: Pipeline, parameters: Mapping[str, Any], run: Mapping[str, Any] | None,
             rows: Iterable[Mapping[str, Any]], attempts: Iterable[Mapping[str, Any]], event_id: int, to_path: ToPath,
             openable: Callable[[str | None], bool]) -> dict[str, Any]:
    """GET pipeline: the DAG with each task's state in `run` (all pending without a run)."""
    by_task = {r["task"]: r for r in rows}
    kinds = {a["task"]: a["error_kind"] for a in attempts}  # the last attempt's kind wins (attempts come oldest first)
    tasks = []
    for name, task in pipe.tasks.items():
        row = by_task.get(name)
        executed = to_path(row["artifact"]) if row else None
        tasks.append({
            "name": name, "path": to_path(task.path), "notebook": task.relpath, "upstream": list(task.upstream),
            "state": row["status"] if row else "pending", "attempts": (row["attempts"] or 0) if row else 0,
            "started": row["started_at"] if row else None, "ended": row["ended_at"] if row else None,
            "duration": duration(row["started_at"], row["ended_at"]) if row else None,
            "reason": row["reason"] if row else None,
            "error": error(row["error"], row["error_cell"], kinds.get(name)) if row else None,
            "executed": executed, "executed_openable": openable(executed),
        })
    via: dict[tuple[str, str], list[str]] = {}
    for e in pipe.edges:
        via.setdefault((e.upstream, e.downstream), []).append(e.reason)
    return {
        "project": project, "run": run_summary(run) if run else None, "parameters": dict(parameters), "tasks": tasks,
        "edges": [{"source": u, "target": d, "via": reasons} for (u, d), reasons in via.items()],
        "event_id": event_id,
    }


def attempt(a: Mapping[str, Any], to_path: ToPath) -> dict[str, Any]:
    return {
        "attempt": a["number"], "status": a["status"], "started": a["started_at"], "ended": a["ended_at"],
        "duration": duration(a["started_at"], a["ended_at"]), "error_cell": a["error_cell"], "error": a["error"],
        "error_kind": a["error_kind"], "executed": to_path(a["artifact"]),
    }


def run_detail(run: Mapping[str, Any], rows: Iterable[Mapping[str, Any]], attempts: Iterable[Mapping[str, Any]],
               notebook_of: Callable[[str], str], to_path: ToPath) -> dict[str, Any]:
    """GET runs/<id>: the run with its tasks and every attempt of each."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        by_task.setdefault(a["task"], []).append(attempt(a, to_path))
    tasks = [{
        "name": r["task"], "state": r["status"], "reason": r["reason"], "started": r["started_at"], "ended": r["ended_at"],
        "duration": duration(r["started_at"], r["ended_at"]), "path": to_path(notebook_of(r["task"])),
        "executed": to_path(r["artifact"]), "attempts": by_task.get(r["task"], []),
    } for r in rows]
    return {**run_summary(run), "selection": run["selection"], "tasks": tasks}


def log(a: Mapping[str, Any], to_path: ToPath) -> dict[str, Any]:
    return {"log": a["log"] or "", "error": a["error"], "error_cell": a["error_cell"], "error_kind": a["error_kind"],
            "status": a["status"], "executed": to_path(a["artifact"])}
