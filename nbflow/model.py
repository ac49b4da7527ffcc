"""Frozen values that the compile side produces and the engine consumes."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .cells import cell_label
from .resources import Request

KERNEL_STARTS = ("fork", "spawn")  # how kernels start: forked from a template where the kernel spec allows it, or launched


@dataclass(frozen=True)
class Policy:
    """How one task is executed; config defaults < per-task config < cell tags."""

    retries: int = 0
    retry_delay: float = 1.0  # seconds before the first retry; doubles each time, with jitter
    retry_max_delay: float = 60.0
    timeout: float | None = None  # seconds for the whole notebook (its kernel is stopped then); None = no limit
    cell_timeout: float | None = None  # seconds for any one cell (papermill's execution_timeout)
    kernel: str | None = None  # None = the notebook's own kernelspec
    pool: str | None = None
    cpus: int = 0  # CPUs reserved from the machine's budget (and pinned) while the task runs; 0 = none reserved
    memory: int | None = None  # bytes the kernel may use
    gpus: int = 0  # GPU ids handed to the kernel through CUDA_VISIBLE_DEVICES
    resources: tuple[tuple[str, float], ...] = ()  # named resources (resources:NAME=N), sorted by name

    @property
    def request(self) -> Request:
        return Request(self.cpus, self.memory, self.gpus, self.resources)


@dataclass(frozen=True)
class DaskSettings:
    """[dask] in nbflow.toml: an existing scheduler's address, or a local cluster of `local_workers` processes."""

    address: str | None = None
    local_workers: int | None = None
    threads: int = 1  # threads per local worker
    wait_for_workers: float = 30.0  # seconds a run waits at its start for a first worker


@dataclass(frozen=True)
class Task:
    """One notebook as a pipeline task. Paths in reads/writes are relative to the project root."""

    name: str  # notebook path relative to the notebooks folder, without .ipynb ("etl/clean")
    path: str  # absolute path of the source notebook
    relpath: str  # path shown in messages, relative to the project root
    explicit_upstream: tuple[str, ...]
    reads: tuple[str, ...]  # templates: may hold {param} placeholders and globs
    writes: tuple[str, ...]
    check_cells: tuple[int, ...]
    parameters: tuple[str, ...]  # names assigned in the parameters cell
    parameters_cell: int | None
    code_hash: str  # hash of the normalized source of the code cells
    identifiers: frozenset[str]  # names used in the code, to know which parameters matter
    kernel: str
    policy: Policy
    upstream: tuple[str, ...] = ()  # explicit and inferred from paths, filled by the DAG builder
    tag_cells: Mapping[str, int] = field(default_factory=dict)  # "upstream:x" / "reads:p" / "writes:p" -> cell index
    parameter_defaults: Mapping[str, Any] = field(default_factory=dict)  # parameters cell: literal value, else source
    tagged: bool = False  # carries at least one nbflow tag
    uses: tuple[str, ...] = ()  # outside services (`uses:NAME` tags), each guarded by a circuit breaker
    cell_lines: tuple[int, ...] = ()  # a text notebook's line of each cell (1-based; 0 unknown); empty for .ipynb
    paired: str | None = None  # the .ipynb paired with this text notebook (jupytext), which is not a task itself
    ploomber: PloomberDecl | None = None  # set when the task comes from a Ploomber declaration
    injected: Mapping[str, Any] = field(default_factory=dict)  # injected after the run's parameters (Ploomber's)
    cwd: str | None = None  # the kernel's working directory when not the notebook's folder
    notebook_copies: tuple[str, ...] = ()  # absolute paths the executed notebook is also written to (.ipynb or .html)
    output_dirs: tuple[str, ...] = ()  # absolute folders created before the notebook runs (Ploomber products' parents)

    @property
    def folder(self) -> str:
        """Where the kernel runs, and what its tags' relative paths are relative to."""
        return self.cwd or os.path.dirname(self.path)

    def at(self, cell: int | None) -> str:
        """'cell 4' (see nbflow.cells), with the line in a text notebook: 'cell 4 (line 14)'."""
        line = self.cell_lines[cell] if cell is not None and 0 <= cell < len(self.cell_lines) else 0
        return (cell_label(cell) or "a cell") + (f" (line {line})" if line else "")


@dataclass(frozen=True)
class PloomberDecl:
    """A task's Ploomber declaration as written: in pipeline.yaml, or in its parameters cell (a directory of scripts)."""

    origin: str  # "pipeline.yaml" or "parameters cell"
    upstream: tuple[str, ...]  # task names as Ploomber writes them (a file's stem)
    product: str | Mapping[str, str] | None  # absolute paths
    params: Mapping[str, Any] = field(default_factory=dict)  # pipeline.yaml's `params`
    nb_key: str = "nb"  # the product key naming the executed notebook
    cell: int | None = None  # the parameters cell


@dataclass(frozen=True)
class Edge:
    upstream: str
    downstream: str
    reason: str  # "upstream tag" or "path data/x.csv"


@dataclass(frozen=True)
class Pipeline:
    """A validated DAG. `order` is a topological order, ties broken by name."""

    root: str
    tasks: Mapping[str, Task]
    order: tuple[str, ...]
    edges: tuple[Edge, ...]

    def untagged_loose(self) -> list[str]:
        """Tasks with no nbflow tag and no edge: often a scratch notebook, or one that drives nbflow itself."""
        linked = {e.upstream for e in self.edges} | {e.downstream for e in self.edges}
        return [n for n, t in self.tasks.items() if not t.tagged and n not in linked]

    def downstream_of(self, name: str) -> list[str]:
        return [e.downstream for e in self.edges if e.upstream == name]

    def ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.tasks[name].upstream)
        while stack:
            t = stack.pop()
            if t not in seen:
                seen.add(t)
                stack.extend(self.tasks[t].upstream)
        return seen

    def descendants(self, name: str) -> set[str]:
        seen: set[str] = set()
        stack = self.downstream_of(name)
        while stack:
            t = stack.pop()
            if t not in seen:
                seen.add(t)
                stack.extend(self.downstream_of(t))
        return seen


@dataclass(frozen=True)
class Config:
    """The project's settings, every path absolute."""

    root: str
    source: str | None  # the file the settings came from, None for defaults
    notebooks: str
    name: str = ""  # the project's name in its store (default: the folder's name)
    include: tuple[str, ...] = ("**/*.ipynb", "**/*.py", "**/*.md")
    exclude: tuple[str, ...] = ()
    store: str = ""
    artifacts: str = ""
    jobs: int = 4
    parameters: Mapping[str, Any] = field(default_factory=dict)
    defaults: Policy = Policy()
    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per-task policy fields
    pools: Mapping[str, int] = field(default_factory=dict)
    schedules: Mapping[str, Any] = field(default_factory=dict)  # [schedules.NAME] tables, validated by nbflow.schedule.spec
    sensors: Mapping[str, Any] = field(default_factory=dict)  # [sensors.NAME] tables
    # operations, validated by nbflow.ops.settings: [alerts], [breakers], [forecast], [openlineage]
    alerts: Mapping[str, Any] = field(default_factory=dict)
    breakers: Mapping[str, Any] = field(default_factory=dict)
    forecast: Mapping[str, Any] = field(default_factory=dict)
    openlineage: Mapping[str, Any] = field(default_factory=dict)
    executor: str = "local"  # "local" or "dask"
    dask: DaskSettings = DaskSettings()
    cpus: int = 0  # the CPU budget of local runs (0: this machine's CPU count)
    gpus: tuple[str, ...] | None = None  # GPU ids local runs hand out (None: found with `nvidia-smi -L`)
    resources: Mapping[str, float] = field(default_factory=dict)  # named resources available to local runs
    kernel_start: str = "fork"  # "fork" (from a template process, where the kernel spec allows it) or "spawn"
    preload: tuple[str, ...] = ()  # modules the kernel template imports (fork mode)
