"""Run history, starting a run (in its own process) and cancelling one."""
from __future__ import annotations

import asyncio
from typing import Any

from ..errors import NbflowError, NotFoundError
from ..records import RunRecord
from ..states import RunState
from . import paths, views
from .base import NbflowHandler, route
from .launcher import startup_error

RECORD_WAIT_S = 60.0  # how long POST runs waits for the runner to record the run (it imports papermill first)
BODY_FIELDS = {"parameters", "only", "force", "executor"}
EXECUTORS = ("local", "dask")


def parse_body(body: Any) -> tuple[dict[str, Any], list[str], bool, str | None]:
    """The trigger body {"parameters": {...}, "only": [...], "force": bool, "executor": "local"|"dask"}, checked field by field."""
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
    executor = body.get("executor")
    if executor is not None and executor not in EXECUTORS:
        raise NbflowError(f"field 'executor' must be one of {', '.join(EXECUTORS)} (or left out for the project's own), not {executor!r}")
    return parameters, only, force, executor


class RunsHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        limit = self.int_arg("limit", 20, 1, 200)
        offset = self.int_arg("offset", 0, 0, 10**9)
        everything = self.int_arg("all", 0, 0, 1) == 1
        self.reply(await self.blocking(self.history, self.folder(), limit, offset, everything))

    def history(self, folder: str, limit: int, offset: int, everything: bool = False) -> dict[str, Any]:
        """Runs, newest first; runs where nothing ran (every task up to date) only with `all=1`."""
        with self.nbflow.project(folder) as project:
            return {"runs": [views.run_summary(r) for r in project.runs(limit, offset, include_noop=everything)],
                    "total": project.count_runs(include_noop=everything)}

    @route
    async def post(self) -> None:
        parameters, only, force, executor = parse_body(self.json_body())
        folder = self.folder()
        project = await self.blocking(self.nbflow.project, folder)
        _, _, warnings = await self.blocking(lambda: project.check_run(parameters, only=only, executor=executor))
        conflict = await self.blocking(lambda: project.run_conflict(parameters, only=only))
        if conflict is not None:  # the rule every run start follows; the runner checks it again atomically
            raise conflict
        child = self.nbflow.runners.start(project, parameters, only, force, executor)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECORD_WAIT_S
        while loop.time() < deadline:
            exited = not child.alive()
            if await self.blocking(self.status_of, folder, child.run_id) is not None:
                break
            if exited:
                message, clash = startup_error(child)
                status = 409 if clash else 400 if child.proc.returncode == 2 else 500
                self.reply({"message": paths.server_relative(self.nbflow.root_dir, message)}, status)
                return
            await asyncio.sleep(0.1)
        self.reply({"run_id": child.run_id, "warnings": warnings}, 202)

    def status_of(self, folder: str, run_id: str) -> RunState | None:
        """The run's status, None while the store has no such run."""
        with self.nbflow.project(folder) as project:
            try:
                return project.show(run_id).run.status
            except NotFoundError:
                return None


class CancelHandler(NbflowHandler):
    @route
    async def post(self, run_id: str) -> None:
        run = await self.blocking(self.cancel, self.folder(), run_id)
        self.reply({"run_id": run.id}, 202)

    def cancel(self, folder: str, run_id: str) -> RunRecord:
        with self.nbflow.project(folder) as project:
            return project.cancel(run_id)
