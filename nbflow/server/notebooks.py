"""One notebook as a task, for the notebook editor's sidebar: what it reads, writes and depends on (GET), and
editing a cell's tags in the file on disk (POST), refused when it would make a cycle."""
from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import CycleRefusedError, NbflowError
from . import paths, views
from .base import NbflowHandler, route


class NotebookTagsHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        notebook = self.get_argument("notebook", "")
        self.reply(await self.blocking(self.info, notebook))

    @route
    async def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict):
            raise NbflowError('the body must be a JSON object like {"notebook": "nb/a.ipynb", "cell": 2, "add": ["upstream:b"], '
                              '"remove": []}')
        notebook, cell = body.get("notebook"), body.get("cell")
        add, remove = body.get("add", []), body.get("remove", [])
        if not isinstance(notebook, str) or not notebook:
            raise NbflowError("'notebook' must be the notebook's path as the file browser shows it")
        if not isinstance(cell, int) or isinstance(cell, bool) or cell < 0:
            raise NbflowError("'cell' must be the cell's index in the notebook (a whole number from 0)")
        for name, value in (("add", add), ("remove", remove)):
            if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
                raise NbflowError(f"'{name}' must be a list of tags (strings), e.g. [\"upstream:clean\"]")
        try:
            self.reply(await self.blocking(self.edit, notebook, cell, add, remove))
        except CycleRefusedError as e:  # the panel shows the cycle
            self.reply({"message": paths.server_relative(self.nbflow.root_dir, e.message), "cycle": e.cycle}, 409)

    def _where(self, notebook: str) -> tuple[str, str]:
        """(project folder, the notebook's absolute path): the project is `?project=` or the notebook's own."""
        full = paths.inside(self.nbflow.root_dir, notebook)
        folder = self.folder() if self.project_arg() else paths.project_folder(self.nbflow.root_dir, notebook)
        return folder, str(full)

    def info(self, notebook: str) -> dict[str, Any]:
        if not notebook:
            raise NbflowError("give the notebook: ?notebook=PATH, as the file browser shows it")
        folder, full = self._where(notebook)
        with self.nbflow.project(folder) as project:
            found = project.notebook_info(full)
        data = dataclasses.asdict(found)
        data.update(project=self.to_path(folder) or "", path=self.to_path(found.path), paired=self.to_path(found.paired),
                    reads=[{"path": p, "cell": c} for p, c in found.reads],
                    writes=[{"path": p, "cell": c} for p, c in found.writes],
                    upstream_cells=[{"task": t, "cell": c} for t, c in found.upstream_cells])
        return data

    def edit(self, notebook: str, cell: int, add: list[str], remove: list[str]) -> dict[str, Any]:
        folder, full = self._where(notebook)
        with self.nbflow.project(folder) as project:
            project.edit_tags(full, cell, add, remove)
            state = project.pipeline_state()
        return views.pipeline(self.to_path(folder) or "", state, self.to_path, self.openable)
