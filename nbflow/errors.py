"""Error types. Each carries the fields a caller needs and a message that says what to do.

All are picklable (plain args), so they survive crossing a process or a Dask worker.
"""
from __future__ import annotations

import copy
from typing import Any

from .cells import cell_label


class NbflowError(Exception):
    """Base of every error nbflow raises on purpose; the CLI prints its message and exits 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:  # keep subclasses with extra fields picklable
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[NbflowError], state: dict[str, Any]) -> NbflowError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class ConfigError(NbflowError):
    """nbflow.toml or [tool.nbflow] holds a field that cannot be used."""

    def __init__(self, path: str, field: str, problem: str, fix: str) -> None:
        super().__init__(f"{path}: field '{field}': {problem}. {fix}")
        self.path, self.field, self.problem, self.fix = path, field, problem, fix


class NotebookError(NbflowError):
    """A notebook (or one of its cells) cannot be compiled into a task."""

    def __init__(self, notebook: str, problem: str, fix: str, cell: int | None = None) -> None:
        where = notebook if cell is None else f"{notebook}, {cell_label(cell)}"
        super().__init__(f"{where}: {problem}. Fix: {fix}")
        self.notebook, self.cell, self.problem, self.fix = notebook, cell, problem, fix
        self.line: int | None = None  # in a text notebook (jupytext), the line where the cell starts

    def at_line(self, line: int | None) -> NotebookError:
        """The same error, also naming the line of a text notebook where its cell starts."""
        if not line or self.cell is None:
            return self
        err = copy.copy(self)
        err.line = line
        err.message = f"{self.notebook}, {cell_label(self.cell)} (line {line}): {self.problem}. Fix: {self.fix}"
        err.args = (err.message,)
        return err


class TagError(NotebookError):
    """A cell tag starts with a known word but does not parse."""


class UnknownUpstreamError(NotebookError):
    """`upstream:NAME` names no task."""


class DuplicateWriterError(NotebookError):
    """Two notebooks declare `writes:` for the same path."""


class MissingInputError(NotebookError):
    """A `reads:` path names no file: warned at compile and dry-run when no task writes it; fails its task when ready."""

    def __init__(self, notebook: str, problem: str, fix: str, cell: int | None, path: str) -> None:
        super().__init__(notebook, problem, fix, cell)
        self.path = path


class CycleError(NbflowError):
    """The dependencies form a cycle; `cycle` lists the task names, first repeated at the end."""

    def __init__(self, cycle: list[str], notebooks: dict[str, str], sources: list[str] | None = None) -> None:
        path = " -> ".join(cycle)
        because = "".join(f"\n  {s}" for s in sources or [])
        files = ", ".join(sorted({notebooks[t] for t in cycle if t in notebooks}))
        super().__init__(
            f"dependency cycle: {path}{because}\nFix: remove one of these `upstream:` or `reads:` tags, or change "
            f"the path it names (notebooks: {files})"
        )
        self.cycle, self.sources = cycle, sources or []


class SelectionError(NbflowError):
    """--only/--from/--to names no task."""


class KernelNotFoundError(NbflowError):
    """A task's kernel is not installed in this environment."""

    def __init__(self, kernel: str, notebooks: list[str], available: list[str]) -> None:
        have = ", ".join(available) or "none"
        super().__init__(
            f"kernel '{kernel}' is not installed (needed by {', '.join(notebooks)}; installed: {have}). "
            f"Fix: install it (for Python: pip install ipykernel && python -m ipykernel install "
            f"--user --name {kernel}) or set `kernel = \"...\"` for these tasks in nbflow.toml"
        )
        self.kernel, self.notebooks, self.available = kernel, notebooks, available


class StoreError(NbflowError):
    """The store cannot be opened or used."""


class StoreGoneError(StoreError):
    """The store file was deleted or replaced under a process using it: nothing more can be recorded."""


class StoreVersionError(StoreError):
    """The store was written by a newer nbflow than this one."""


class NotFoundError(NbflowError):
    """A run, task or dataset asked for does not exist in the store."""

    exit_code = 2


class ConflictError(NbflowError):
    """The request conflicts with the current state (a run already in progress, say)."""


class CycleRefusedError(ConflictError):
    """An edit of a notebook's tags was refused (nothing written): it would make the dependency cycle `cycle`."""

    def __init__(self, cycle: list[str], message: str) -> None:
        super().__init__(message)
        self.cycle = cycle


class RunConflictError(ConflictError):
    """Another live run holds a dataset this run would write, or writes one it would read."""

    def __init__(self, run_id: str, pid: int | None, host: str | None, path: str, theirs: str, mine: str) -> None:
        verb = {"write": "writes", "read": "reads"}
        super().__init__(
            f"run {run_id} (pid {pid} on {host}) is running and {verb[theirs]} '{path}', which this run would "
            f"{mine} too. Fix: wait for it to end (`nbflow run --wait`), cancel it (Ctrl-C where it runs, or Cancel "
            f"in the JupyterLab panel), or run only tasks whose data does not overlap")
        self.run_id, self.pid, self.host, self.path, self.theirs, self.mine = run_id, pid, host, path, theirs, mine


class ScheduleError(NbflowError):
    """A schedule or sensor cannot be used: a bad cron field, an unknown time zone, a glob outside the project."""

    def __init__(self, where: str, field: str, problem: str, fix: str) -> None:
        super().__init__(f"{where}: field '{field}': {problem}. Fix: {fix}")
        self.where, self.field, self.problem, self.fix = where, field, problem, fix


class StandbyError(NbflowError):
    """Another scheduler holds the store's lease and this one was asked not to wait."""


class LeaseLostError(ConflictError):
    """A scheduler tried to claim work after another scheduler took the store's lease."""


class ResourceError(NbflowError):
    """A task asks for CPUs, memory, GPUs or a named resource that no machine or worker of this run can give."""

    def __init__(self, task: str, notebook: str, problem: str) -> None:
        super().__init__(f"{notebook} (task {task}): {problem}")
        self.task, self.notebook, self.problem = task, notebook, problem


class ExecutorError(NbflowError):
    """The executor cannot run this pipeline: its Dask scheduler is unreachable, a worker cannot see the project, ..."""
