"""Run history, starting (or queueing) a run in its own process, resuming one, cancelling one."""
from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any

from ..errors import NbflowError, NotFoundError
from ..project import Project, new_run_id
from ..records import RunRecord
from ..states import RunState
from . import paths, queue, views
from .base import NbflowHandler, route
from .launcher import Child, startup_error

if TYPE_CHECKING:
    from .state import ServerState

log = logging.getLogger("nbflow.server")
RECORD_WAIT_S = 60.0  # how long POST runs waits for the runner to record the run (it imports papermill first)
BODY_FIELDS = {"parameters", "only", "force", "queue", "executor"}
EXECUTORS = ("local", "dask")
STATUSES = {s.value for s in RunState} | {"queued"}


def parse_body(body: Any) -> tuple[dict[str, Any], list[str], bool, str | None]:
    """The trigger body {"parameters": {...}, "only": [...], "force": bool, "queue": bool, "executor": "local"|"dask"},
    checked field by field."""
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
    for flag in ("force", "queue"):
        if not isinstance(body.get(flag, False), bool):
            raise NbflowError(f"field '{flag}' must be true or false, not {body[flag]!r}")
    executor = body.get("executor")
    if executor is not None and executor not in EXECUTORS:
        raise NbflowError(f"field 'executor' must be one of {', '.join(EXECUTORS)} (or left out for the project's own), not {executor!r}")
    return parameters, only, bool(body.get("force", False)), executor


def wants_queue(body: Any) -> bool:
    return isinstance(body, dict) and body.get("queue") is True


class RunsHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        limit = self.int_arg("limit", 20, 1, 200)
        offset = self.int_arg("offset", 0, 0, 10**9)
        statuses = [s for s in self.get_argument("status", "").split(",") if s]
        unknown = sorted(set(statuses) - STATUSES)
        if unknown:
            raise NbflowError(f"unknown run status '{unknown[0]}'. Fix: use {', '.join(sorted(STATUSES))}")
        trigger = self.get_argument("trigger", "")
        ran_only = self.get_argument("ran", "") in ("1", "true")
        grid = self.get_argument("tasks", "") in ("1", "true")
        everything = self.int_arg("all", 0, 0, 1) == 1
        self.reply(await self.blocking(self.history, self.folder(), limit, offset, statuses, trigger, ran_only, grid, everything))

    def history(self, folder: str, limit: int, offset: int, statuses: list[str], trigger: str, ran_only: bool,
                grid: bool, everything: bool = False) -> dict[str, Any]:
        """Runs, newest first, filtered; runs where nothing ran (succeeded, every task up to date) only with `all=1`."""
        with self.nbflow.project(folder) as project:
            queued = [q.as_json() for q in queue.entries(project.root)
                      if (not statuses or "queued" in statuses) and "jupyter".startswith(trigger)]
            stored = [s for s in statuses if s != "queued"]
            if statuses and not stored:
                return {"runs": [], "total": 0, "queued": queued}
            found, total = project.history(limit, offset, statuses=stored, trigger=trigger, ran_only=ran_only,
                                           include_noop=everything)
            runs = []
            for run, tasks in found:
                row = views.run_summary(run)
                if grid:
                    row["tasks"] = {t.task: t.status for t in tasks}
                    row["durations"] = {t.task: t.duration for t in tasks}
                row["ran"] = sum(1 for t in tasks if t.attempts)
                runs.append(row)
            return {"runs": runs, "total": total, "queued": queued if offset == 0 else []}

    @route
    async def post(self) -> None:
        body = self.json_body()
        parameters, only, force, executor = parse_body(body)
        folder = self.folder()
        project = await self.blocking(self.nbflow.project, folder)
        _, _, warnings = await self.blocking(lambda: project.check_run(parameters, only=only, executor=executor))
        conflict = await self.blocking(lambda: project.run_conflict(parameters, only=only))
        waiting = queue.entries(project.root)
        if wants_queue(body) and (waiting or conflict is not None):  # wait behind the queue and the runs it overlaps
            entry = queue.add(project.root, new_run_id(), parameters, only, force, executor)
            self.reply({"run_id": entry.run_id, "queued": True, "position": len(waiting) + 1, "warnings": warnings}, 202)
            return
        if conflict is not None:  # the rule every run start follows; the runner checks it again atomically
            raise conflict
        child = self.nbflow.runners.start(project, parameters, only, force, executor)
        await self.wait_recorded(folder, child, warnings)

    async def wait_recorded(self, folder: str, child: Child, warnings: list[str] | None = None) -> None:
        """Answer 202 once the runner has recorded its run (or the runner's own error if it ended first)."""
        warnings = warnings or []
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
        return status_of(self.nbflow, folder, run_id)


def status_of(state: ServerState, folder: str, run_id: str) -> RunState | None:
    """The run's status, None while the store has no such run."""
    with state.project(folder) as project:
        try:
            return project.show(run_id).run.status
        except NotFoundError:
            return None


class CancelHandler(NbflowHandler):
    @route
    async def post(self, run_id: str) -> None:
        folder = self.folder()
        try:
            entry = queue.remove(folder, run_id)
        except NotFoundError:
            run = await self.blocking(self.cancel, folder, run_id)
            self.reply({"run_id": run.id}, 202)
            return
        self.reply({"run_id": entry.run_id, "dequeued": True}, 202)

    def cancel(self, folder: str, run_id: str) -> RunRecord:
        with self.nbflow.project(folder) as project:
            return project.cancel(run_id)


class ResumeHandler(NbflowHandler):
    """POST runs/<id>/resume: run again what failed, was cancelled or never finished (the panel's Resume and Retry
    failed), in its own `nbflow resume` process."""

    @route
    async def post(self, run_id: str) -> None:
        folder = self.folder()
        project = await self.blocking(self.nbflow.project, folder)
        run_id = await self.blocking(project.check_resume, run_id)
        before = await self.blocking(self.events_of, project)
        child = self.nbflow.runners.resume(project, run_id)  # the runner checks the run claims, as `nbflow resume` does
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECORD_WAIT_S
        while loop.time() < deadline:  # until the resumed run is recorded running again (or its runner ended)
            if await self.blocking(self.events_of, project) != before:
                break
            if not child.alive():
                if child.proc.returncode == 2:
                    message, clash = startup_error(child)
                    self.reply({"message": paths.server_relative(self.nbflow.root_dir, message)}, 409 if clash else 400)
                    return
                break
            await asyncio.sleep(0.1)
        self.reply({"run_id": run_id, "resumed": True}, 202)

    def events_of(self, project: Project) -> int:
        return project.last_event_id()


class DryRunHandler(NbflowHandler):
    """POST dry-run: what a run with this body would do, task by task, and why (the CLI's `--dry-run`). Records
    nothing; a POST only because it takes the same body as `POST runs`."""

    @route
    async def post(self) -> None:
        parameters, only, force, executor = parse_body(self.json_body())
        self.reply(await self.blocking(self.plan, self.folder(), parameters, only, force, executor))

    def plan(self, folder: str, parameters: dict[str, Any], only: list[str], force: bool, executor: str | None) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            _, _, warnings = project.check_run(parameters, only=only, executor=executor)
            planned = project.dry_run(parameters, only=only, force=force)
            return {"tasks": [{"task": p.task, "action": p.action, "reason": p.reason} for p in planned],
                    "parameters": project.run_parameters(parameters, "(new)", None), "warnings": warnings}


QUEUE_CHECK_S = 1.0


async def watch_queues(state: ServerState) -> None:
    """Every second, start the queued runs whose project is idle; a failure is logged and the loop goes on."""
    while True:
        try:
            await drain_queues(state)
        except Exception:  # noqa: BLE001 - the watcher must survive anything one project does
            log.exception("nbflow: checking the run queues failed")
        await asyncio.sleep(QUEUE_CHECK_S)


async def drain_queues(state: ServerState) -> None:
    """Start the oldest queued run of each known project once nothing it overlaps is running (the run claims' rule)
    and no runner this server started for the project is still starting (its claims may not be recorded yet)."""
    loop = asyncio.get_running_loop()
    for folder in list(state.known):
        waiting = queue.entries(folder)
        if not waiting or state.runners.starting(folder):
            continue
        entry = waiting[0]
        try:
            project = await loop.run_in_executor(None, state.project, folder)
            conflict = await loop.run_in_executor(None, functools.partial(project.run_conflict, entry.parameters, only=entry.only))
            if conflict is not None or state.runners.starting(folder):
                continue
            queue.remove(folder, entry.run_id)
            state.runners.start(project, entry.parameters, entry.only, entry.force, entry.executor, run_id=entry.run_id)
            log.info("nbflow: started queued run %s of %s", entry.run_id, folder)
        except NbflowError as err:  # the queued request no longer fits the pipeline: the reason goes to the server log
            queue.remove(folder, entry.run_id)
            log.warning("nbflow: queued run %s of %s could not start: %s", entry.run_id, folder, err.message)
