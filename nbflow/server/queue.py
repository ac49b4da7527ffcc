"""Runs queued from the panel while another run of the project goes: kept as files, started when the project is idle.

A queued run is one JSON file `<project>/.nbflow/queue/<run_id>.json` holding the request (parameters, only, force, executor)
and when it was queued. The server checks every second whether the project of each known queue is idle (no live run in
the store, no runner of its own still exiting) and then starts the oldest entry under the id it was queued with, so
the panel's History row of the queued run becomes that run. The files outlive a restart of the Jupyter server: a
restarted server starts them once a request names the project again (the panel does when it is opened or restored).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import NotFoundError

QUEUE_DIR = os.path.join(".nbflow", "queue")


@dataclass(frozen=True)
class QueuedRun:
    run_id: str
    parameters: dict[str, Any]
    only: list[str]
    force: bool
    queued_at: float
    executor: str | None = None  # "local" or "dask"; None: the project's own

    def as_json(self) -> dict[str, Any]:
        return {"id": self.run_id, "status": "queued", "trigger": "jupyter", "started": None, "ended": None,
                "duration": None, "parameters": self.parameters, "only": self.only, "force": self.force,
                "executor": self.executor,
                "queued_at": self.queued_at, "logical_date": self.parameters.get("run_date")}


def folder(root: str) -> str:
    return os.path.join(root, QUEUE_DIR)


def add(root: str, run_id: str, parameters: dict[str, Any], only: Iterable[str], force: bool,
        executor: str | None = None) -> QueuedRun:
    """Queue a run request under `run_id` (written atomically: a reader never sees half a file)."""
    entry = QueuedRun(run_id, dict(parameters), list(only), force, time.time(), executor)
    os.makedirs(folder(root), exist_ok=True)
    path = os.path.join(folder(root), f"{run_id}.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"run_id": run_id, "parameters": entry.parameters, "only": entry.only, "force": force,
                   "queued_at": entry.queued_at, "executor": executor}, f)
    os.replace(tmp, path)
    return entry


def entries(root: str) -> list[QueuedRun]:
    """The project's queued runs, oldest first (a file that does not parse is skipped)."""
    try:
        names = [n for n in os.listdir(folder(root)) if n.endswith(".json")]
    except OSError:
        return []
    out = []
    for name in names:
        try:
            with open(os.path.join(folder(root), name), encoding="utf-8") as f:
                d = json.load(f)
            out.append(QueuedRun(str(d["run_id"]), dict(d.get("parameters") or {}), list(d.get("only") or []),
                                 bool(d.get("force")), float(d.get("queued_at") or 0),
                                 d.get("executor") if d.get("executor") in ("local", "dask") else None))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda e: (e.queued_at, e.run_id))


def remove(root: str, run_id: str) -> QueuedRun:
    """Take a queued run out of the queue (to start it, or because the user cancelled it)."""
    for entry in entries(root):
        if entry.run_id == run_id or (len(run_id) >= 6 and entry.run_id.startswith(run_id)):
            try:
                os.remove(os.path.join(folder(root), f"{entry.run_id}.json"))
            except FileNotFoundError:
                break  # taken by another request in between
            return entry
    raise NotFoundError(f"no queued run {run_id!r}")
