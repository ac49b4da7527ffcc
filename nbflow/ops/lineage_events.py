"""OpenLineage RunEvents for each run (the parent job, named for the project) and each task attempt (a child job
`project.task` whose ParentRunFacet names the run), with the files read and written as datasets carrying their
content hash as the DatasetVersion facet, and the ErrorMessage facet on failure.

The observer only queues small descriptions; a thread of its own builds the events with the `openlineage-python`
client (imported there: it costs ~0.8 s) and emits them. A failed emission is counted and reported as a warning:
it never fails or slows the run. Run ids are UUIDs derived from nbflow's ids, so a resumed run keeps its id.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..engine.observe import FileRecords, RunContext, RunObserver
from ..executors.base import AttemptResult
from ..liveness import HOST
from ..states import AttemptState, RunState
from .settings import LineageSettings

log = logging.getLogger("nbflow.openlineage")
PRODUCER = "https://github.com/nbflow/nbflow"
_IDS = uuid.UUID("6f1c1f3e-7a0b-5d7e-9a43-0b6c2e8f4d21")  # the namespace of nbflow's run uuids
_END = {AttemptState.SUCCEEDED: "COMPLETE", AttemptState.FAILED: "FAIL", AttemptState.CHECK_FAILED: "FAIL",
        AttemptState.CANCELLED: "ABORT"}
_RUN_END = {RunState.SUCCEEDED: "COMPLETE", RunState.FAILED: "FAIL", RunState.CANCELLED: "ABORT"}


def run_uuid(project: str, run_id: str) -> str:
    return str(uuid.uuid5(_IDS, f"{project}/{run_id}"))


def attempt_uuid(project: str, run_id: str, task: str, number: int) -> str:
    return str(uuid.uuid5(_IDS, f"{project}/{run_id}/{task}/{number}"))


def dataset_id(path: str, root: str, host: str = HOST) -> tuple[str, str]:
    """(namespace, name): `file://host` and the absolute path for a local file; an fsspec URL's scheme and bucket
    (`s3://bucket`) and its key otherwise."""
    if "://" in path:
        scheme, rest = path.split("://", 1)
        if scheme == "file":
            return f"file://{host}", "/" + rest.lstrip("/")
        bucket, _, key = rest.partition("/")
        return f"{scheme}://{bucket}", key
    return f"file://{host}", os.path.normpath(path if os.path.isabs(path) else os.path.join(root, path))


@dataclass(frozen=True)
class Intent:
    """One event to build and emit (plain values: built in the loop, turned into a client event in the thread)."""

    event_type: str  # START | COMPLETE | FAIL | ABORT
    at: float
    run: str  # uuid
    job: str
    parent: tuple[str, str] | None = None  # (run uuid, job name)
    inputs: tuple[tuple[str, str, str], ...] = ()  # (namespace, name, sha256)
    outputs: tuple[tuple[str, str, str], ...] = ()
    error: str | None = None


def build_event(intent: Intent, namespace: str) -> Any:
    """The client's RunEvent for an intent."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import dataset_version_dataset, error_message_run, parent_run

    facets: dict[str, Any] = {}
    if intent.parent:
        facets["parent"] = parent_run.ParentRunFacet(run=parent_run.Run(runId=intent.parent[0]),
                                                     job=parent_run.Job(namespace=namespace, name=intent.parent[1]),
                                                     producer=PRODUCER)
    if intent.error:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=intent.error, programmingLanguage="python",
                                                                        producer=PRODUCER)

    def version(sha: str) -> dict[str, Any]:
        return {"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=sha, producer=PRODUCER)}

    return RunEvent(
        eventType=RunState[intent.event_type],
        eventTime=dt.datetime.fromtimestamp(intent.at, dt.timezone.utc).isoformat(),
        run=Run(runId=intent.run, facets=facets),
        job=Job(namespace=namespace, name=intent.job),
        inputs=[InputDataset(namespace=ns, name=name, facets=version(sha)) for ns, name, sha in intent.inputs],
        outputs=[OutputDataset(namespace=ns, name=name, facets=version(sha)) for ns, name, sha in intent.outputs],
        producer=PRODUCER,
    )


def make_client(settings: LineageSettings) -> Any:
    from openlineage.client import OpenLineageClient

    transport: Any
    if settings.transport == "http":
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        assert settings.url is not None
        transport = HttpTransport(HttpConfig(url=settings.url, endpoint=settings.endpoint, timeout=settings.timeout,
                                             retry={"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.2}))
    elif settings.transport == "file":
        from openlineage.client.transport.file import FileConfig, FileTransport

        assert settings.path is not None
        os.makedirs(os.path.dirname(settings.path) or ".", exist_ok=True)
        transport = FileTransport(FileConfig(log_file_path=settings.path, append=True))
    else:
        from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport

        transport = ConsoleTransport(ConsoleConfig())
    return OpenLineageClient(transport=transport)


class Emitter:
    """A thread that emits queued intents in order; failures are counted, never raised."""

    def __init__(self, settings: LineageSettings, client: Callable[[LineageSettings], Any] = make_client) -> None:
        self.settings, self.make_client = settings, client
        self.sent = self.failed = 0
        self.error: str | None = None
        self._queue: queue.Queue[Intent | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="nbflow-openlineage", daemon=True)
        self._thread.start()

    def put(self, intent: Intent) -> None:
        self._queue.put(intent)

    def close(self, timeout: float) -> bool:
        """Emit what is queued, waiting at most `timeout` seconds; True when all was handled."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        client = None
        while True:
            intent = self._queue.get()
            if intent is None:
                break
            try:
                client = client or self.make_client(self.settings)
                client.emit(build_event(intent, self.settings.namespace))
                self.sent += 1
            except Exception as e:  # noqa: BLE001 - an unreachable backend must not fail the run
                self.failed += 1
                self.error = f"{type(e).__name__}: {e}"
                log.warning("OpenLineage event not emitted: %s", self.error)
        if client is not None:
            try:
                client.close(0)
            except Exception:  # noqa: BLE001
                log.debug("closing the OpenLineage client failed", exc_info=True)


class LineageEvents(RunObserver):
    """START/COMPLETE/FAIL/ABORT for the run and each task attempt."""

    def __init__(self, settings: LineageSettings, project: str, emitter: Emitter | None = None) -> None:
        self.settings, self.project = settings, project
        self.emitter = emitter or Emitter(settings)
        self.parent: tuple[str, str] = ("", project)

    async def run_started(self, run: RunContext) -> None:
        self.parent = (run_uuid(self.project, run.run_id), self.project)
        self.emitter.put(Intent("START", time.time(), self.parent[0], self.project))

    def _datasets(self, run: RunContext, files: FileRecords) -> tuple[tuple[str, str, str], ...]:
        return tuple((*dataset_id(path, run.config.root), sha) for path, sha, _ in files if sha != "missing")

    async def attempt_started(self, run: RunContext, task: str, number: int, reads: FileRecords) -> None:
        self.emitter.put(Intent("START", time.time(), attempt_uuid(self.project, run.run_id, task, number),
                                f"{self.project}.{task}", parent=self.parent, inputs=self._datasets(run, reads)))

    async def attempt_finished(self, run: RunContext, task: str, number: int, result: AttemptResult, reads: FileRecords,
                               writes: FileRecords) -> None:
        kind = _END.get(AttemptState(result.status), "FAIL")
        error = None if kind == "COMPLETE" else (f"{result.ename}: {result.evalue}" if result.ename else result.error or str(result.status))
        if error and result.error_cell is not None:
            error = f"cell {result.error_cell}: {error}"
        self.emitter.put(Intent(kind, result.ended_at or time.time(), attempt_uuid(self.project, run.run_id, task, number),
                                f"{self.project}.{task}", parent=self.parent, inputs=self._datasets(run, reads),
                                outputs=self._datasets(run, writes), error=error))

    async def run_finished(self, run: RunContext, status: RunState) -> None:
        self.emitter.put(Intent(_RUN_END.get(status, "FAIL"), time.time(), self.parent[0], self.project,
                                error=None if status == RunState.SUCCEEDED else f"the run {status}"))
        handled = await asyncio.to_thread(self.emitter.close, self.settings.flush_timeout)
        where = self.settings.url or self.settings.path or "the console"
        if not handled:
            run.emit("warning", {"message": f"OpenLineage: events still being sent to {where} after "
                                            f"{self.settings.flush_timeout:g} s were dropped"})
        if self.emitter.failed:
            run.emit("warning", {"message": f"OpenLineage: {self.emitter.failed} of {self.emitter.sent + self.emitter.failed} "
                                            f"events could not be sent to {where} ({self.emitter.error})"})
