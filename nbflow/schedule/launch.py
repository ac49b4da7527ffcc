"""The project's Launcher: scheduled runs go through Project.run_async in the scheduler's own event loop.

In-process on purpose: every notebook already runs in its own kernel process, so the daemon only coordinates;
a run starts within milliseconds of its slot; and a run is the same run as `nbflow run` (same planning, so
unchanged tasks are skipped). If the daemon dies, even by SIGKILL, its kernels exit with it (see "Crash
safety" in docs/design.md), the run shows as crashed, and the next scheduler resumes it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from .jobs import RunRequest

if TYPE_CHECKING:
    from ..project import Project


class ProjectLauncher:
    """Runs, resumes and inspects runs of one Project."""

    def __init__(self, project: Project) -> None:
        self.project = project

    async def run(self, request: RunRequest, started: Callable[[str], None]) -> str:
        def on_event(kind: str, data: Mapping[str, Any]) -> None:
            if kind == "run_started":
                started(data["run_id"])

        summary = await self.project.run_async(dict(request.parameters), only=request.only, jobs=request.jobs,
                                               trigger=request.trigger, logical_date=request.logical_date,
                                               schedule=request.schedule, on_event=on_event)
        return summary.status

    async def resume(self, run_id: str) -> str:
        tasks = self.project.show(run_id)["tasks"]
        if all(r["status"] in ("succeeded", "skipped") for r in tasks):  # it crashed after its last task: close it
            self.project.store.finish_run(run_id, "succeeded")
            return "succeeded"
        summary = await self.project.resume_async(run_id)
        return summary.status

    def liveness(self, run_id: str) -> str | None:
        try:
            status: str = self.project.show(run_id)["run"]["status"]
        except NotFoundError:
            return None
        return status
