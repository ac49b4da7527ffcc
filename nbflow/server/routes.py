"""Read-only routes: the pipeline with a run's states, one run, one attempt's log, lineage."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from ..errors import NbflowError, NotFoundError
from . import paths, views
from .base import NbflowHandler, route


class PipelineHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        self.reply(await self.blocking(self.pipeline, self.folder(), self.get_argument("run", "")))

    def pipeline(self, folder: str, run_arg: str) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            state = project.pipeline_state(run_arg if run_arg not in ("", "none") else None)
        if run_arg == "none":
            state = dataclasses.replace(state, run=None, tasks={}, attempts=())
        return views.pipeline(self.project_label(folder), state, self.to_path, self.openable)

    def project_label(self, folder: str) -> str:
        return self.to_path(folder) or ""


class RunHandler(NbflowHandler):
    @route
    async def get(self, run_id: str) -> None:
        self.reply(await self.blocking(self.detail, self.folder(), run_id))

    def detail(self, folder: str, run_id: str) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            detail = project.show(run_id)
            try:  # a task's file may be .ipynb, .py or .md, or named by pipeline.yaml
                files = {name: t.path for name, t in project.compile().tasks.items()}
            except NbflowError:  # the notebooks do not compile now: the run's record still shows
                files = {}

            def notebook_of(task: str) -> str:
                return files.get(task) or os.path.join(project.config.notebooks, task + ".ipynb")

            return views.run_detail(detail, notebook_of, self.to_path)


class LogHandler(NbflowHandler):
    @route
    async def get(self, run_id: str, task: str, attempt: str) -> None:
        self.reply(await self.blocking(self.log_of, self.folder(), run_id, task, int(attempt)))

    def log_of(self, folder: str, run_id: str, task: str, attempt: int) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            return views.log(project.logs(run_id, task, attempt), self.to_path)


class CompareHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        a, b = self.get_argument("a", ""), self.get_argument("b", "")
        if not a or not b:
            raise NbflowError("give the two runs to compare as the query arguments 'a' and 'b' (run ids, or unique "
                              "prefixes or suffixes of them)")
        self.reply(await self.blocking(self.compare, self.folder(), a, b, self.get_argument("task", None) or None))

    def compare(self, folder: str, a: str, b: str, task: str | None) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            return views.compare(project.diff(a, b, task), self.to_path)


class LineageHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        task, path = self.get_argument("task", None), self.get_argument("path", None)
        if (task is None) == (path is None):
            raise NbflowError("give exactly one of the query arguments 'task' (a task name) or 'path' (a file path "
                              "relative to the project)")
        self.reply(await self.blocking(self.lineage, self.folder(), task, path))

    def lineage(self, folder: str, task: str | None, path: str | None) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            if task is not None:
                if task.removesuffix(".ipynb") not in project.compile().tasks:
                    raise NotFoundError(f"no task '{task}' in this project. Fix: name a task as the graph shows it")
                return views.task_lineage(project.lineage(task), self.to_path)
            assert path is not None
            full = paths.inside(project.root, path)  # a path is read as relative to the project, never the server's cwd
            found: dict[str, Any] = views.as_plain(project.lineage(str(full)))
            return found
