"""Run attempts on this machine, in the runner's own event loop, each notebook in a fresh kernel of its own.

No worker processes: a notebook's work happens in its kernel, and the runner only relays messages, so one
event loop drives many notebooks at once. Kernels come from a KernelPool that starts them ahead of need.
If the runner is killed, its kernels exit: a launched kernel notices its parent is gone within a second
(ipykernel's parent poller: jupyter_client launches it with JPY_PARENT_PID); a forked one dies with the kernel
template, which exits when the pipe it shares with the runner closes (see forkserver.py).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING

from .attempt import execute_attempt_async, preload_in_background
from .base import AttemptResult, AttemptSpec, CellProgress, KernelLaunch

if TYPE_CHECKING:
    from .kernels import KernelPool

AHEAD = 2  # kernels started beyond the parallelism, for the tasks that will be ready next


def warm_up(kernel_start: str, preload: tuple[str, ...]) -> None:
    """Every task of the coming run will run (a new project, or --force): start the kernel template now, while the
    runner creates its store, instead of when the first task is decided."""
    if kernel_start == "fork":
        from .forkserver import warm

        warm(preload)


class LocalExecutor:
    """Up to `workers` notebooks at once (the engine enforces it); kernels pre-started for up to `workers + AHEAD`."""

    def __init__(self, workers: int, ahead: int = AHEAD) -> None:
        self.capacity = workers + ahead
        self._pool: KernelPool | None = None
        self._preloaded: concurrent.futures.Future[None] | None = None

    def _kernels(self) -> KernelPool:
        """Created on first use, so a run with nothing to do never imports jupyter_client."""
        if self._pool is None:
            from .kernels import KernelPool  # jupyter_client, in this thread, before the preload thread starts

            self._pool = KernelPool(self.capacity)
            self._preloaded = preload_in_background()
        return self._pool

    def want(self, launch: KernelLaunch) -> None:
        self._kernels().want(launch)

    def unwant(self, launch: KernelLaunch) -> None:
        if self._pool is not None:
            self._pool.unwant(launch)

    async def submit(self, spec: AttemptSpec, on_cell: CellProgress | None = None) -> AttemptResult:
        pool = self._kernels()
        if self._preloaded is not None:
            await asyncio.wrap_future(self._preloaded)
        return await execute_attempt_async(spec, pool.take, pool.release, on_cell)

    async def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            await self._pool.close(cancel)
