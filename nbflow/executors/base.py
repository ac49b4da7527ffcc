"""The one interface between the engine and the places attempts run, and the plain values that cross it.

`AttemptSpec` in, `AttemptResult` out: plain, picklable values, so an attempt can run in this process's event
loop (the local executor) or on another machine (a Dask worker) alike.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..model import KERNEL_STARTS
from ..states import AttemptState, ErrorKind

CellProgress = Callable[[int, int, float], None]  # (cell: 1-based position in the source notebook, cells, started)


def default_kernel_start() -> str:
    """How kernels start when nothing says otherwise: fork (where it applies), unless NBFLOW_KERNEL_START says spawn."""
    value = os.environ.get("NBFLOW_KERNEL_START", "").strip().lower()
    return value if value in KERNEL_STARTS else "fork"


@dataclass(frozen=True)
class KernelLaunch:
    """What a kernel starts with. A pre-started kernel serves only an attempt with an equal launch, so it gets
    exactly what a cold one would: the same kernel spec, working directory and environment.

    `start`: "fork" from a template process where the kernel spec allows it (else launched), or "spawn" (always
    launched); `preload`: modules the template imports besides the kernel's own (see README, "Configuration")."""

    kernel: str
    cwd: str
    env: tuple[tuple[str, str], ...] = ()
    start: str = field(default_factory=default_kernel_start)
    preload: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttemptSpec:
    """Everything needed to run one attempt; plain values, so it pickles."""

    run_id: str
    task: str
    number: int
    source: str  # absolute path of the source notebook (never written)
    output: str  # absolute path of the executed notebook to keep
    cwd: str
    kernel: str
    parameters: dict[str, Any]
    timeout: float | None = None  # the whole notebook, kernel start included
    cell_timeout: float | None = None
    check_cells: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cpus: int = 0  # CPUs asked for (cpus:N)
    cores: tuple[int, ...] = ()  # the CPU cores granted: the kernel is pinned to them
    memory: int | None = None  # bytes the kernel may use (memory:SIZE)
    gpus: int = 0  # GPUs asked for (gpus:N)
    gpu_ids: tuple[str, ...] = ()  # the GPU ids granted: the kernel's CUDA_VISIBLE_DEVICES
    named: tuple[tuple[str, float], ...] = ()  # named resources asked for (resources:NAME=N)
    root: str = ""  # the project folder (an executor that hashes outputs where the attempt ran needs it)
    writes: tuple[str, ...] = ()  # the outputs to hash, as the project names them (resolved writes: paths)
    notebook_copies: tuple[str, ...] = ()  # where the executed notebook is also written (.ipynb copied, .html converted)
    output_dirs: tuple[str, ...] = ()  # folders created before the notebook runs (Ploomber creates its products' parents)
    kernel_start: str = field(default_factory=default_kernel_start)  # "fork" or "spawn", as in KernelLaunch
    preload: tuple[str, ...] = ()

    @property
    def launch(self) -> KernelLaunch:
        env = dict(self.env)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpu_ids)
        return KernelLaunch(self.kernel, self.cwd, tuple(sorted(env.items())), self.kernel_start, self.preload)


@dataclass(frozen=True)
class AttemptResult:
    status: AttemptState  # succeeded | failed | check_failed
    started_at: float
    ended_at: float
    error_kind: ErrorKind | None = None
    error: str | None = None  # one line for people: what failed and where
    error_cell: int | None = None  # index in the source notebook, 0-based over all cells
    error_execution_count: int | None = None  # that cell's In [n] in the executed notebook
    ename: str | None = None  # the exception's class name, when a cell raised
    evalue: str | None = None  # and its message
    log: str = ""
    retriable: bool = False
    pid: int = 0  # the process that ran the attempt (the runner, or a Dask worker)
    host: str = ""  # where it ran
    worker: str | None = None  # the Dask worker's address
    peak_rss: int | None = None  # the kernel's peak resident memory (with its children), bytes
    cpu_seconds: float | None = None  # CPU time the kernel (and its children) used
    resources: dict[str, Any] = field(default_factory=dict)  # what was applied: cores, gpus, memory and how
    writes: tuple[tuple[str, str, int], ...] | None = None  # outputs hashed where the attempt ran (None: not hashed)
    missing: tuple[str, ...] = ()  # declared outputs not found there
    notebook: bytes | None = None  # the executed notebook, sent back by an executor that ran it elsewhere
    kernel_start: str | None = None  # how the attempt's kernel started: "fork" or "spawn" (None: it never started)
    kernel_start_ms: float | None = None  # and how long it took, from the request to ready


class Executor(Protocol):
    """Runs attempts; `submit` may be awaited many times at once, up to the engine's own limit."""

    def want(self, launch: KernelLaunch) -> None:
        """A hint: an attempt with this launch will probably be submitted soon (start its kernel ahead)."""
        ...

    def unwant(self, launch: KernelLaunch) -> None:
        """The hint no longer holds (the task was skipped or cannot run)."""
        ...

    async def submit(self, spec: AttemptSpec, on_cell: CellProgress | None = None) -> AttemptResult:
        """Run one attempt to its end and describe the outcome; `on_cell` hears of each code cell starting, where the
        executor can tell (it is called in the engine's event loop)."""
        ...

    async def close(self, cancel: bool = False) -> None:
        """Release resources; with `cancel`, attempts still running are stopped first."""
        ...
