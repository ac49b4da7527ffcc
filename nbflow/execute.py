"""One attempt: papermill runs one notebook in a fresh kernel. Runs in whatever process the executor chose.

This is the only module that imports papermill, and it does so inside the function, so compiling,
planning and a no-op run never pay for the import.
"""
from __future__ import annotations

import functools
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

LOG_LIMIT = 1_000_000  # characters of stdout/stderr kept in the store per attempt
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MARKER_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


@dataclass(frozen=True)
class AttemptSpec:
    """Everything a worker needs to run one attempt; plain values, so it pickles."""

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


@dataclass(frozen=True)
class AttemptResult:
    status: str  # succeeded | failed | check_failed
    started_at: float
    ended_at: float
    error_kind: str | None = None  # exception | exit | check | timeout | dead_kernel | no_kernel | internal
    error: str | None = None
    error_cell: int | None = None  # index in the source notebook, 0-based over all cells
    log: str = ""
    retriable: bool = False
    pid: int = 0


def execute_attempt(spec: AttemptSpec) -> AttemptResult:
    """Run the notebook with papermill and describe the outcome; never raises for a notebook's own failure."""
    import logging

    import papermill as pm
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from . import kernels

    # papermill's logger (nbclient logs through it too) repeats what the exceptions below report, and warns
    # "Passed unknown parameter" because every task gets every parameter: the attempt record says it all.
    logging.getLogger("papermill").setLevel(logging.CRITICAL)

    started = time.time()
    kernels.stderr_files.clear()
    kernels.launched_pids.clear()
    os.makedirs(os.path.dirname(spec.output), exist_ok=True)
    timer = _TaskTimer(spec.timeout)
    executed = _Executed(spec.output)
    old_env = {k: os.environ.get(k) for k in spec.env}
    os.environ.update(spec.env)
    try:
        pm.execute_notebook(
            spec.source, spec.output, parameters=dict(spec.parameters), kernel_name=spec.kernel,
            cwd=spec.cwd, execution_timeout=spec.cell_timeout, progress_bar=False, log_output=False,
            kernel_manager_class=kernels.IPCKernelManager,
        )
        outcome: dict[str, Any] = {"status": "succeeded"}
    except pm.PapermillExecutionError as e:
        cell = executed.failed_cell()
        if e.ename == "SystemExit":
            outcome = _failure("exit", f"the notebook called sys.exit({e.evalue})", cell)
        elif cell is not None and cell in spec.check_cells:
            outcome = {**_failure("check", f"check cell {cell} failed: {e.ename}: {e.evalue}", cell),
                       "status": "check_failed", "retriable": False}
        else:
            outcome = _failure("exception", f"{e.ename}: {e.evalue}", cell)
    except CellTimeoutError:
        cell = executed.failed_cell()
        outcome = _failure("timeout", f"cell {cell} ran longer than the {spec.cell_timeout:g} s cell_timeout", cell)
    except DeadKernelError:
        cell = executed.failed_cell()
        if timer.fired:
            outcome = _failure("timeout", f"the notebook ran longer than its {spec.timeout:g} s timeout (stopped in cell {cell})", cell)
        else:
            outcome = _failure("dead_kernel", f"the kernel died while running cell {cell}", cell)
    except NoSuchKernel:
        outcome = {**_failure("no_kernel", f"kernel '{spec.kernel}' is not installed", None), "retriable": False}
    except Exception as e:  # noqa: BLE001 - any other failure is recorded, never lost
        outcome = _failure("internal", f"{type(e).__name__}: {e}", executed.failed_cell())
    finally:
        timer.cancel()
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    log = executed.log() + _kernel_output(kernels.stderr_files)
    return AttemptResult(started_at=started, ended_at=time.time(), log=_clip(log), pid=os.getpid(), **outcome)


def _kernel_output(paths: list[str]) -> str:
    """What the kernel process itself printed (start-up warnings, crashes), read once and removed."""
    text = ""
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text += f.read()
            os.remove(path)
        except OSError:
            pass
    return f"\n--- kernel process output ---\n{text}" if text.strip() else ""


def _clip(log: str) -> str:
    return log if len(log) <= LOG_LIMIT else log[: LOG_LIMIT // 2] + "\n... (truncated) ...\n" + log[-LOG_LIMIT // 2:]


class _TaskTimer:
    """Stops the attempt's kernel when the task's time is up; nbclient then reports a dead kernel within a second."""

    def __init__(self, seconds: float | None) -> None:
        self.fired = False
        self._done = threading.Event()
        if seconds:
            threading.Thread(target=self._watch, args=(seconds,), name="nbflow-task-timeout", daemon=True).start()

    def _watch(self, seconds: float) -> None:
        from . import kernels

        if self._done.wait(seconds):
            return
        self.fired = True
        killed: set[int] = set()
        while not self._done.is_set():  # a kernel still starting is stopped as soon as it has a pid
            for pid in set(kernels.launched_pids) - killed:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                killed.add(pid)
            self._done.wait(0.2)

    def cancel(self) -> None:
        self._done.set()


def _failure(kind: str, message: str, cell: int | None) -> dict[str, Any]:
    return {"status": "failed", "error_kind": kind, "error": message, "error_cell": cell, "retriable": True}


class _Executed:
    """The executed notebook papermill wrote, parsed once, for the failing cell and the log."""

    def __init__(self, path: str) -> None:
        self.path = path

    @functools.cached_property
    def nb(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _source_cells(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Cells with their index in the source notebook: papermill's injected and marker cells skipped."""
        index = 0
        for cell in self.nb.get("cells", []):
            if not set(cell.get("metadata", {}).get("tags", [])) & _MARKER_TAGS:
                yield index, cell
                index += 1

    def failed_cell(self) -> int | None:
        """Index, in the source notebook, of the cell that failed or was running when the attempt stopped."""
        last_started = None  # a dead kernel leaves no mark: the failing cell is the last one that started
        for index, cell in self._source_cells():
            pm_meta = cell.get("metadata", {}).get("papermill", {})
            errored = any(o.get("output_type") == "error" and o.get("ename") != "SystemExit" for o in cell.get("outputs", []))
            if pm_meta.get("exception") or pm_meta.get("status") in ("failed", "running") or errored:
                return index
            if pm_meta.get("start_time"):
                last_started = index
        return last_started

    def log(self) -> str:
        """Streams and tracebacks of the executed notebook, as the terminal would have shown them."""
        parts = []
        for index, cell in self._source_cells():
            for out in cell.get("outputs", []):
                kind = out.get("output_type")
                if kind == "stream":
                    text = out.get("text", "")
                    parts.append("".join(text) if isinstance(text, list) else text)
                elif kind == "error":
                    parts.append(f"[cell {index}] " + _ANSI.sub("", "\n".join(out.get("traceback", []))) + "\n")
        return "".join(parts)
