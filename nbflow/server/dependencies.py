"""The graph's dependency edits: add or remove the `upstream:` tag that makes one task depend on another (the panel's
drag and Delete), in the notebook file on disk, refused when it would make a cycle."""
from __future__ import annotations

from typing import Any

from ..errors import CycleRefusedError, NbflowError
from . import paths, views
from .base import NbflowHandler, route


class DependenciesHandler(NbflowHandler):
    @route
    async def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict):
            raise NbflowError('the body must be a JSON object like {"task": "report", "upstream": "clean", "action": "add"}')
        task, upstream, action = body.get("task"), body.get("upstream"), body.get("action", "add")
        for name, value in (("task", task), ("upstream", upstream)):
            if not isinstance(value, str) or not value.strip():
                raise NbflowError(f"'{name}' must be a task's name, as the graph shows it")
        if action not in ("add", "remove"):
            raise NbflowError("'action' must be \"add\" or \"remove\"")
        try:
            self.reply(await self.blocking(self.edit, task, upstream, action == "remove"))
        except CycleRefusedError as e:  # the panel shows the cycle
            self.reply({"message": paths.server_relative(self.nbflow.root_dir, e.message), "cycle": e.cycle}, 409)

    def edit(self, task: str, upstream: str, remove: bool) -> dict[str, Any]:
        folder = self.folder()
        with self.nbflow.project(folder) as project:
            _, edits = project.edit_dependency(task, upstream, remove=remove)
            state = project.pipeline_state()
        return {"pipeline": views.pipeline(self.to_path(folder) or "", state, self.to_path, self.openable),
                "edits": [{"notebook": self.to_path(e.path), "cell": e.cell, "add": list(e.add), "remove": list(e.remove)}
                          for e in edits]}
