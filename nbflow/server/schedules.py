"""The Schedules tab's routes: schedules, sensors and the scheduler's state; add, pause, resume, remove; a cron
preview in words with its next fire times; a backfill started in its own process, and its progress."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from typing import IO, Any

from ..errors import NbflowError
from ..project import Project
from .base import NbflowHandler, route

ADD_FIELDS = {"name", "cron", "timezone", "parameters", "only", "catchup", "max_concurrent", "overlap", "jobs"}
BACKFILL_FIELDS = {"start", "end", "schedule", "concurrency", "parameters", "only"}


def _object(body: Any, fields: set[str], example: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise NbflowError(f"the request body must be a JSON object like {example}")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise NbflowError(f"unknown field '{unknown[0]}' in the request body. Fix: use only {', '.join(sorted(fields))}")
    return body


class SchedulesHandler(NbflowHandler):
    """GET schedules: every schedule, sensor, whether a scheduler runs, and the backfill this server started.
    POST schedules: add a schedule to the store (as `nbflow schedule add`)."""

    @route
    async def get(self) -> None:
        self.reply(await self.blocking(self.overview, self.folder()))

    def overview(self, folder: str) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            backfill = self.nbflow.backfills.get(project.root)
            return {"schedules": project.schedules(), "sensors": project.sensors(), "scheduler": project.scheduler_status(),
                    "backfill": backfill.progress(project) if backfill else None}

    @route
    async def post(self) -> None:
        body = _object(self.json_body(), ADD_FIELDS, '{"name": "nightly", "cron": "30 2 * * *", "timezone": "UTC"}')
        for key in ("name", "cron"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise NbflowError(f"field '{key}' is required")
        self.reply(await self.blocking(self.add, self.folder(), body), 201)

    def add(self, folder: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            options = {k: body[k] for k in ("timezone", "parameters", "only", "catchup", "max_concurrent", "overlap", "jobs")
                       if body.get(k) not in (None, "")}
            return project.add_schedule(body["name"].strip(), body["cron"], **options)


class ScheduleActionHandler(NbflowHandler):
    """POST schedules/<name>/pause|resume|remove."""

    @route
    async def post(self, name: str, action: str) -> None:
        await self.blocking(self.act, self.folder(), name, action)
        self.reply({"name": name, "action": action})

    def act(self, folder: str, name: str, action: str) -> None:
        with self.nbflow.project(folder) as project:
            if name not in {s["name"] for s in project.schedules()}:
                from ..errors import NotFoundError

                raise NotFoundError(f"no schedule '{name}'. Fix: check the Schedules tab (or `nbflow schedule list`)")
            {"pause": project.pause_schedule, "resume": project.resume_schedule, "remove": project.remove_schedule}[action](name)


class SlotsHandler(NbflowHandler):
    """GET schedules/<name>/slots: the schedule's recorded slots, newest first."""

    @route
    async def get(self, name: str) -> None:
        limit = self.int_arg("limit", 20, 1, 500)
        self.reply(await self.blocking(self.slots, self.folder(), name, limit))

    def slots(self, folder: str, name: str, limit: int) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            return {"name": name, "slots": project.slots(name, limit)}


class CronHandler(NbflowHandler):
    """GET cron?expr=&timezone=: the expression in words and its next five fire times (the form's live preview)."""

    @route
    async def get(self) -> None:
        expr, tz = self.get_argument("expr", ""), self.get_argument("timezone", "UTC") or "UTC"
        count = self.int_arg("count", 5, 1, 50)
        self.reply(await self.blocking(Project.cron_preview, expr, tz, count))


class Backfill:
    """A `nbflow backfill` process this server started for a project, and what it covers."""

    def __init__(self, proc: subprocess.Popen[bytes], schedule: str | None, start: str, end: str, total: int, log: str) -> None:
        self.proc, self.schedule, self.start, self.end, self.total, self.log = proc, schedule, start, end, total, log

    def progress(self, project: Project) -> dict[str, Any]:
        """Slots of this backfill by status, from the store (backfill and scheduler share slot rows)."""
        name = self.schedule or "@daily"
        counts: dict[str, int] = {}
        for slot in project.slots(name, limit=10_000):
            if self.start <= str(slot.get("run_date") or "")[: len(self.end)] <= self.end:
                counts[slot["status"]] = counts.get(slot["status"], 0) + 1
        return {"schedule": self.schedule, "start": self.start, "end": self.end, "total": self.total, "counts": counts,
                "running": self.proc.poll() is None, "exit_code": self.proc.poll(), "log": self.log}


class BackfillHandler(NbflowHandler):
    """POST backfill: start `nbflow backfill` over a date range in its own process; GET schedules shows its progress."""

    @route
    async def post(self) -> None:
        body = _object(self.json_body(), BACKFILL_FIELDS, '{"start": "2026-01-01", "end": "2026-01-31", "schedule": "nightly"}')
        for key in ("start", "end"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise NbflowError(f"field '{key}' is required (a date, YYYY-MM-DD)")
        folder = self.folder()
        found = await self.blocking(self.start, folder, body)
        self.reply(found, 202)

    def start(self, folder: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            current = self.nbflow.backfills.get(project.root)
            if current is not None and current.proc.poll() is None:
                from ..errors import ConflictError

                raise ConflictError(f"a backfill of this project is running (pid {current.proc.pid}, {current.start} to "
                                    f"{current.end}). Fix: wait for it to finish")
            schedule = body.get("schedule") or None
            total = project.backfill_size(body["start"], body["end"], schedule)
            cmd = [sys.executable, "-m", "nbflow", "backfill", "-C", project.root, "--start", body["start"], "--end", body["end"],
                   "-c", str(int(body.get("concurrency") or 2))]
            if schedule:
                cmd += ["--schedule", schedule]
            for key, value in (body.get("parameters") or {}).items():
                cmd += ["-p", f"{key}={json.dumps(value)}"]
            for name in body.get("only") or []:
                cmd += ["--only", name]
            logs = os.path.join(project.root, ".nbflow", "logs")
            os.makedirs(logs, exist_ok=True)
            log_path = os.path.join(logs, f"backfill-{dt.datetime.now():%Y%m%dT%H%M%S}.log")
            out = open(log_path, "ab")  # noqa: SIM115 - closed by the reaper thread
            proc = subprocess.Popen(cmd, cwd=project.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "NO_COLOR": "1", "TERM": "dumb"}, start_new_session=True)
            threading.Thread(target=_reap, args=(proc, out), daemon=True, name="nbflow-backfill-reap").start()
            backfill = Backfill(proc, schedule, body["start"], body["end"], total, os.path.relpath(log_path, project.root))
            self.nbflow.backfills[project.root] = backfill
            return {"pid": proc.pid, **backfill.progress(project)}


def _reap(proc: subprocess.Popen[bytes], out: IO[bytes]) -> None:
    """Wait for the backfill so it never lingers as a zombie, then close its log."""
    proc.wait()
    out.close()
