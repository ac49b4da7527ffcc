"""Read-only routes: the pipeline with a run's states, run history, one run, one attempt's log, lineage."""
from __future__ import annotations

import os
from typing import Any

from ..errors import NbflowError, NotFoundError
from ..project import Project, with_liveness
from . import paths, views
from .base import NbflowHandler, route
from .state import ServerState


class PipelineHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        self.reply(await self.blocking(self.pipeline, self.folder(), self.get_argument("run", "")))

    def pipeline(self, folder: str, run_arg: str) -> dict[str, Any]:
        project = self.nbflow.project(folder)
        store = self.nbflow.store(project.config)
        event_id = store.last_event_id() if store else 0  # read first: a change after this is reported by `changes`
        pipe = project.compile()
        run, rows, attempts = None, [], []
        if store is not None and run_arg != "none":
            run_id = run_arg or store.latest_run_id()
            if run_id:
                run = with_liveness(store.get_run(run_id))
                rows, attempts = store.run_tasks(run["id"]), store.attempts(run["id"])
        elif run_arg not in ("", "none"):
            raise NotFoundError(f"no run {run_arg!r}: this project has no runs yet")
        return views.pipeline(self.project_label(folder), pipe, project.parameter_defaults(pipe), run, rows, attempts,
                              event_id, self.to_path, self.openable)

    def project_label(self, folder: str) -> str:
        return self.to_path(folder) or ""

    def openable(self, path: str | None) -> bool:
        """Whether JupyterLab can open this server-relative path (it refuses dot-folders unless allow_hidden)."""
        if not path or not os.path.exists(os.path.join(self.nbflow.root_dir, path)):
            return False
        return self.nbflow.allow_hidden or not paths.is_hidden(path)


def existing(state: ServerState, project: Project) -> Project:
    if state.store(project.config) is None:
        raise NotFoundError(f"the project {project.root} has no runs yet. Fix: start one with the Run button or `nbflow run`")
    return project


class RunHandler(NbflowHandler):
    @route
    async def get(self, run_id: str) -> None:
        self.reply(await self.blocking(self.detail, self.folder(), run_id))

    def detail(self, folder: str, run_id: str) -> dict[str, Any]:
        project = existing(self.nbflow, self.nbflow.project(folder))
        store = project.store
        run = with_liveness(store.get_run(run_id))

        def notebook_of(task: str) -> str:
            return os.path.join(project.config.notebooks, task + ".ipynb")

        return views.run_detail(run, store.run_tasks(run["id"]), store.attempts(run["id"]), notebook_of, self.to_path)


class LogHandler(NbflowHandler):
    @route
    async def get(self, run_id: str, task: str, attempt: str) -> None:
        self.reply(await self.blocking(self.log_of, self.folder(), run_id, task, int(attempt)))

    def log_of(self, folder: str, run_id: str, task: str, attempt: int) -> dict[str, Any]:
        project = existing(self.nbflow, self.nbflow.project(folder))
        return views.log(project.logs(run_id, task, attempt), self.to_path)


class LineageHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        task, path = self.get_argument("task", None), self.get_argument("path", None)
        if (task is None) == (path is None):
            raise NbflowError("give exactly one of the query arguments 'task' (a task name) or 'path' (a file path "
                              "relative to the project)")
        self.reply(await self.blocking(self.lineage, self.folder(), task, path))

    def lineage(self, folder: str, task: str | None, path: str | None) -> dict[str, Any]:
        project = existing(self.nbflow, self.nbflow.project(folder))
        if task is not None:
            if task.removesuffix(".ipynb") not in project.compile().tasks:
                raise NotFoundError(f"no task '{task}' in this project. Fix: name a task as the graph shows it")
            found = project.lineage(task)
            attempt = found["task"]["attempt"]
            for heavy in ("log", "fingerprint"):  # the log has its own route; the fingerprint is for `nbflow` internals
                attempt.pop(heavy, None)
            attempt["executed"] = self.to_path(attempt.get("artifact"))
            return found
        assert path is not None
        full = paths.inside(project.root, path)  # a path is read as relative to the project, never the server's cwd
        return project.lineage(str(full))
