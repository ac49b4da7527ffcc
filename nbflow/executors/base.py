"""The one interface between the engine and the places attempts run (local kernels, later Dask)."""
from __future__ import annotations

from typing import Protocol

from ..execute import AttemptResult, AttemptSpec, KernelLaunch


class Executor(Protocol):
    """Runs attempts; `submit` may be awaited many times at once, up to the engine's own limit."""

    def want(self, launch: KernelLaunch) -> None:
        """A hint: an attempt with this launch will probably be submitted soon (start its kernel ahead)."""
        ...

    def unwant(self, launch: KernelLaunch) -> None:
        """The hint no longer holds (the task was skipped or cannot run)."""
        ...

    async def submit(self, spec: AttemptSpec) -> AttemptResult:
        """Run one attempt to its end and describe the outcome."""
        ...

    async def close(self, cancel: bool = False) -> None:
        """Release resources; with `cancel`, attempts still running are stopped first."""
        ...
