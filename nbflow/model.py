"""Frozen values that the compile side produces and the engine consumes."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    include: tuple[str, ...] = ("**/*.ipynb",)
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
    kernel_start: str = "fork"  # "fork" (from a template process, where the kernel spec allows it) or "spawn"
    preload: tuple[str, ...] = ()  # modules the kernel template imports (fork mode)
