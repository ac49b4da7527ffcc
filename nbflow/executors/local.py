"""Run attempts in a pool of worker processes on this machine."""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..execute import AttemptResult, AttemptSpec, execute_attempt

ORPHAN_CHECK_SECONDS = 0.5
_busy = False  # in a worker: an attempt is running


def _run(spec: AttemptSpec) -> AttemptResult:
    """What a worker runs: one attempt, with the busy flag the SIGTERM handler reads."""
    global _busy
    _busy = True
    try:
        return execute_attempt(spec)
    finally:
        _busy = False


def _on_sigterm(signum: int, frame: object) -> None:
    """In a worker: stop the running notebook as Ctrl-C would, so papermill shuts its kernel down."""
    if _busy:
        raise KeyboardInterrupt
    os._exit(0)


def _worker_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides what Ctrl-C means, and tells us by SIGTERM
    signal.signal(signal.SIGTERM, _on_sigterm)
    _watch_parent(parent)


def _watch_parent(parent: int) -> None:
    """Pool worker start-up: if the runner dies (even by SIGKILL), kill this worker's kernels, then exit.

    jupyter_client cleans kernels up only on a normal exit, SIGINT or SIGTERM of the process that started
    them, so without this a killed runner would leave kernels running.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_SECONDS)
        import psutil

        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
        os._exit(1)

    threading.Thread(target=watch, name="nbflow-orphan-watch", daemon=True).start()


class LocalExecutor:
    """A process pool: each attempt runs papermill in a worker, and each notebook gets its own fresh kernel."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init, initargs=(os.getpid(),))
        return self._pool

    async def submit(self, spec: AttemptSpec) -> AttemptResult:
        started = time.time()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._get_pool(), _run, spec)
        except BrokenProcessPool:
            self._pool = None  # a worker died (killed from outside); the next attempt gets a new pool
            return AttemptResult(status="failed", started_at=started, ended_at=time.time(), error_kind="internal",
                                 error="the worker process running this attempt died", retriable=True)

    async def close(self, cancel: bool = False) -> None:
        """Shut the pool down; with `cancel`, first stop running notebooks (their kernels are shut down)."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        if cancel:
            for process in list(getattr(pool, "_processes", {}).values()):
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
