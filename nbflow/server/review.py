"""Read-only routes the panel's review views use: run-form fields, an executed notebook's JSON, lineage paths for
autocompletion, a task's duration trend, a run's timeline, and (from issue 15's Project.diff) a run comparison."""
from __future__ import annotations

import os
from typing import Any

from ..errors import NbflowError
from ..records import as_json
from .base import NbflowHandler, route


class ParametersHandler(NbflowHandler):
    """GET parameters: each field of the run form with the value a run will use, its type and declaring notebooks, and
    the executor choice (the project's own, and where a Dask run goes)."""

    @route
    async def get(self) -> None:
        self.reply(await self.blocking(self.fields, self.folder()))

    def fields(self, folder: str) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            return {"fields": project.parameter_fields(), "executor": project.executor_options()}


class NotebookHandler(NbflowHandler):
    """GET notebook?path=: an executed notebook (server-root-relative path, under the project's artifacts folder) as
    nbformat JSON, for a read-only preview rendered by JupyterLab's rendermime (never HTML served from here)."""

    @route
    async def get(self) -> None:
        path = self.get_argument("path", "")
        if not path:
            raise NbflowError("query argument 'path' is required: an executed notebook as the panel lists it")
        full = os.path.join(self.nbflow.root_dir, path)
        self.reply(await self.blocking(self.notebook, self.folder(), full))

    def notebook(self, folder: str, full: str) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            nb = project.artifact_notebook(full)
        return {"path": self.to_path(full), "mtime": os.path.getmtime(full), "notebook": nb}


class DatasetsHandler(NbflowHandler):
    """GET datasets?prefix=: paths recorded in lineage (relative to the project), for the Lineage tab's suggestions."""

    @route
    async def get(self) -> None:
        prefix = self.get_argument("prefix", "")
        limit = self.int_arg("limit", 50, 1, 500)
        self.reply(await self.blocking(self.paths, self.folder(), prefix, limit))

    def paths(self, folder: str, prefix: str, limit: int) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            return {"paths": project.dataset_paths(prefix, limit)}


class TaskHistoryHandler(NbflowHandler):
    """GET tasks/<task>/history: the task's newest attempts across runs (status, duration), for a sparkline."""

    @route
    async def get(self, task: str) -> None:
        limit = self.int_arg("limit", 30, 1, 500)
        self.reply(await self.blocking(self.history, self.folder(), task, limit))

    def history(self, folder: str, task: str, limit: int) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            attempts = project.task_history(task, limit)
        return {"task": task, "attempts": [{"run_id": a.run_id, "attempt": a.number, "status": a.status,
                                             "started": a.started_at, "duration": a.duration} for a in attempts]}


class TimelineHandler(NbflowHandler):
    """GET runs/<id>/timeline: every attempt's phases (queued, kernel start, running) for the Timeline tab."""

    @route
    async def get(self, run_id: str) -> None:
        self.reply(await self.blocking(self.timeline, self.folder(), run_id))

    def timeline(self, folder: str, run_id: str) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            found = project.timeline(run_id)
        run = found["run"]
        return {"run": {"id": run.id, "status": run.status, "started": run.started_at, "ended": run.ended_at},
                "attempts": as_json(found["attempts"]), "tasks": as_json(found["tasks"]), "now": _now()}


def _now() -> float:
    import time

    return time.time()
