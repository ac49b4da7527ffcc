"""The one interface between the engine and the places attempts run (local processes, later Dask)."""
from __future__ import annotations

from typing import Protocol

from ..execute import AttemptResult, AttemptSpec


class Executor(Protocol):
    """Runs attempts; `submit` may be awaited many times at once, up to the engine's own limit."""

    async def submit(self, spec: AttemptSpec) -> AttemptResult:
        """Run one attempt to its end and describe the outcome."""
        ...

    async def close(self, cancel: bool = False) -> None:
        """Stop workers; with `cancel`, attempts still running are stopped first."""
        ...
