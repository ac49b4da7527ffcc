"""Run history, starting a run (in its own process) and cancelling one."""
from __future__ import annotations

import asyncio
from typing import Any

from ..errors import NbflowError, NotFoundError
from ..model import Config
from ..project import Project
from ..store import Store
from . import views
from .base import NbflowHandler, route
from .launcher import startup_error
from .routes import existing

RECORD_WAIT_S = 60.0  # how long POST runs waits for the runner to record the run (it imports papermill first)
BODY_FIELDS = {"parameters", "only", "force"}


def parse_body(body: Any) -> tuple[dict[str, Any], list[str], bool]:
    """The trigger body {"parameters": {...}, "only": [...], "force": bool}, checked field by field."""
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise NbflowError('the request body must be a JSON object like {"parameters": {"sample_size": 500}, "only": [], "force": false}')
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        raise NbflowError(f"unknown field '{unknown[0]}' in the request body. Fix: use only {', '.join(sorted(BODY_FIELDS))}")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise NbflowError(f"field 'parameters' must be an object of name: value, not {type(parameters).__name__}")
    for key in parameters:
        if not key.isidentifier():
            raise NbflowError(f"parameter name '{key}' is not a Python name. Fix: use a name like sample_size")
    only = body.get("only") or []
    if isinstance(only, str):
        only = [only]
    if not isinstance(only, list) or not all(isinstance(n, str) for n in only):
        raise NbflowError("field 'only' must be a list of task names")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise NbflowError(f"field 'force' must be true or false, not {force!r}")
    return parameters, only, force


class RunsHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        limit = self.int_arg("limit", 20, 1, 200)
        offset = self.int_arg("offset", 0, 0, 10**9)
        self.reply(await self.blocking(self.history, self.folder(), limit, offset))

    def history(self, folder: str, limit: int, offset: int) -> dict[str, Any]:
        project = self.nbflow.project(folder)
        if self.nbflow.store(project.config) is None:
            return {"runs": [], "total": 0}
        return {"runs": [views.run_summary(r) for r in project.runs(limit, offset)], "total": project.store.count_runs()}

    @route
    async def post(self) -> None:
        parameters, only, force = parse_body(self.get_json_body())
        project = await self.blocking(self.nbflow.project, self.folder())
        _, _, warnings = await self.blocking(lambda: project.check_run(parameters, only=only))
        active, settled = await self.blocking(self.active, project)
        child = self.nbflow.launcher.start(project, parameters, only, force, active, settled)  # synchronous check-and-spawn
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECORD_WAIT_S
        while loop.time() < deadline:
            exited = not child.alive()
            if await self.blocking(self.recorded, project.config, child.run_id):
                break
            if exited:
                self.reply({"message": startup_error(child.log_path)}, 400 if child.proc.returncode == 2 else 500)
                return
            await asyncio.sleep(0.1)
        self.reply({"run_id": child.run_id, "warnings": warnings}, 202)

    def active(self, project: Project) -> tuple[list[dict[str, Any]], list[str]]:
        """The project's live running runs, and the run of this server's runner process if the store shows it finished."""
        store = self.nbflow.store(project.config)
        if store is None:
            return [], []
        mine = self.nbflow.launcher.child(project.root)
        settled = [mine.run_id] if mine is not None and self.finished(store, mine.run_id) else []
        return project.active_runs(), settled

    @staticmethod
    def finished(store: Store, run_id: str) -> bool:
        try:
            return store.get_run(run_id)["status"] != "running"
        except NotFoundError:
            return False

    def recorded(self, config: Config, run_id: str) -> bool:
        store = self.nbflow.store(config)
        if store is None:
            return False
        try:
            store.get_run(run_id)
        except NotFoundError:
            return False
        return True


class CancelHandler(NbflowHandler):
    @route
    async def post(self, run_id: str) -> None:
        run = await self.blocking(self.cancel, self.folder(), run_id)
        self.reply({"run_id": run["id"]}, 202)

    def cancel(self, folder: str, run_id: str) -> dict[str, Any]:
        return existing(self.nbflow, self.nbflow.project(folder)).cancel(run_id)
