"""One attempt: papermill runs one notebook in a fresh kernel.

This is the only module that imports papermill, and it does so inside the function, so compiling,
planning and a no-op run never pay for the import. The attempt is async: the local executor runs many at
once in the runner's event loop, each notebook in its own kernel, handed over already started and connected
(see executors/kernels.py). `execute_attempt` is the sync form for executors that run one attempt per call.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..cells import cell_label
from ..liveness import HOST
from ..resources import format_size
from ..states import AttemptState, ErrorKind
from .base import AttemptResult, AttemptSpec, CellProgress, KernelLaunch

if TYPE_CHECKING:
    from .kernels import Kernel

LOG_LIMIT = 1_000_000  # characters of stdout/stderr kept in the store per attempt
SAVE_EVERY = 2.0  # seconds between saves of a running notebook's executed copy
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MARKER_TAGS = {"injected-parameters", "papermill-error-cell-tag"}
log = logging.getLogger("nbflow.attempt")


KernelSource = Callable[["KernelLaunch"], Awaitable["Kernel"]]
KernelSink = Callable[["Kernel"], None]


def preload() -> None:
    """Import the executor stack; the local executor does this in a thread while the first kernel starts
    (jsonschema without its slow optional part: see nbflow.lightimport)."""
    from .. import lightimport

    lightimport.jsonschema()
    with _preload_lock:  # two runs in one process (the scheduler) must not import the same package at once
        import nbclient.client  # noqa: F401
        import papermill.execute  # noqa: F401


def import_nbformat() -> None:
    """Import nbformat the fast way preload does (for `nbflow diff` and `nbflow report`, which read notebooks with it)."""
    from .. import lightimport

    lightimport.jsonschema()
    with _preload_lock:
        import nbformat  # noqa: F401


_preload_lock = threading.Lock()


def preload_in_background() -> concurrent.futures.Future[None]:
    """`preload` in a daemon thread. Not asyncio's default executor: its threads are joined when the event loop closes
    and again at interpreter exit, so a run cancelled while these imports were still going (seconds on a loaded
    machine) did not end until they finished."""
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    done.set_running_or_notify_cancel()  # an awaiter that is cancelled must not cancel it for the others

    def work() -> None:
        try:
            preload()
        except BaseException as e:  # noqa: BLE001 - handed to whoever awaits it
            done.set_exception(e)
        else:
            done.set_result(None)

    threading.Thread(target=work, name="nbflow-preload", daemon=True).start()
    return done


def execute_attempt(spec: AttemptSpec) -> AttemptResult:
    """Run one attempt in a kernel started for it, to its end (for a worker process or a Dask worker)."""
    return asyncio.run(execute_attempt_async(spec))


async def execute_attempt_async(spec: AttemptSpec, take: KernelSource | None = None,
                                release: KernelSink | None = None, on_cell: CellProgress | None = None) -> AttemptResult:
    """Run the notebook with papermill and describe the outcome; never raises for a notebook's own failure.

    `take` hands over a started kernel for the spec's launch (default: start one now) and `release` gets it
    back when the notebook is written (default: shut it down now). `on_cell(cell, cells, started)` is called as each
    code cell starts (1-based position in the source notebook, its cell count, the time)."""
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from . import kernels, limits

    started = time.time()
    executed = _Executed(spec.output)
    kernel: Kernel | None = None
    timer: asyncio.TimerHandle | None = None
    timed_out = False
    trace = ""
    applied = limits.Limits()
    meter: limits.Meter | None = None
    sampler: asyncio.Task[None] | None = None

    def time_is_up() -> None:
        nonlocal timed_out
        timed_out = True
        if kernel is not None:
            kernel.kill()

    try:
        try:
            os.makedirs(os.path.dirname(spec.output), exist_ok=True)
        except OSError as e:
            raise ArtifactError(spec.output) from e
        for folder in spec.output_dirs:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as e:
                raise ArtifactError(folder) from e
        kernel = await asyncio.wait_for((take or kernels.start)(spec.launch), spec.timeout)
        if spec.timeout:
            timer = asyncio.get_running_loop().call_later(max(0.0, started + spec.timeout - time.time()), time_is_up)
        if kernel.pid:
            applied = limits.apply(kernel.pid, spec.cores, spec.memory)
            meter = limits.Meter(kernel.pid)
            sampler = asyncio.ensure_future(_sample(meter))
        if applied.problem:
            raise _BelowBaseline(applied.problem)
        await _cancellable(_papermill(spec, kernel, on_cell))
        outcome: dict[str, Any] = {"status": AttemptState.SUCCEEDED}
    except _BelowBaseline as e:
        outcome = {**_failure(ErrorKind.MEMORY_EXCEEDED, f"memory:{format_size(spec.memory)} is less than {e}. "
                              f"Fix: raise memory: for this task", None), "retriable": False}
    except PapermillExecutionError as e:
        cell = executed.failed_cell()
        if e.ename == "MemoryError" and spec.memory:
            outcome = {**_failure(ErrorKind.MEMORY_EXCEEDED, _over_limit(spec, applied, meter, "MemoryError"), cell, e.ename, e.evalue),
                       "retriable": False}
        elif e.ename == "SystemExit":
            outcome = _failure(ErrorKind.EXIT, f"the notebook called sys.exit({e.evalue})", cell, e.ename, e.evalue)
        elif cell is not None and cell in spec.check_cells:
            outcome = {**_failure(ErrorKind.CHECK, f"check failed: {e.ename}: {e.evalue}", cell, e.ename, e.evalue),
                       "status": AttemptState.CHECK_FAILED, "retriable": False}
        else:
            outcome = _failure(ErrorKind.EXCEPTION, f"{e.ename}: {e.evalue}", cell, e.ename, e.evalue)
    except CellTimeoutError:
        cell = executed.failed_cell()
        outcome = _failure(ErrorKind.TIMEOUT, f"the cell ran longer than the {spec.cell_timeout:g} s cell_timeout", cell)
    except (asyncio.TimeoutError, TimeoutError) as e:
        outcome = _failure(ErrorKind.TIMEOUT, f"the kernel did not start within the task's {spec.timeout:g} s timeout"
                           if kernel is None else f"timed out waiting for the kernel: {e}", executed.failed_cell())
    except DeadKernelError:
        cell = executed.failed_cell()
        if timed_out:
            outcome = _failure(ErrorKind.TIMEOUT, f"the notebook ran longer than its {spec.timeout:g} s timeout", cell)
        elif limits.oom_killed(applied.cgroup):
            outcome = {**_failure(ErrorKind.MEMORY_EXCEEDED, _over_limit(spec, applied, meter, "the kernel was killed"), cell),
                       "retriable": False}
        else:
            outcome = _failure(ErrorKind.DEAD_KERNEL, "the kernel died while running this cell", cell)
    except ArtifactError as e:
        reason = e.__cause__.strerror if isinstance(e.__cause__, OSError) and e.__cause__.strerror else e.__cause__
        if e.args and e.args[0] in spec.output_dirs:
            message = f"cannot create the folder {e.args[0]} for the task's products: {reason}. Fix: make it writable"
        else:
            message = (f"cannot write the executed notebook {spec.output}: {reason}. Fix: make the artifacts folder "
                       f"writable (`artifacts` in nbflow.toml), then resume the run")
        outcome = {**_failure(ErrorKind.ARTIFACT, message, executed.failed_cell()), "retriable": False}
    except NoSuchKernel:
        outcome = {**_failure(ErrorKind.NO_KERNEL, f"kernel '{spec.kernel}' is not installed", None), "retriable": False}
    except Exception as e:  # noqa: BLE001 - a failure of nbflow itself: recorded with its traceback, never lost
        log.exception("attempt %s of %s in run %s failed inside nbflow", spec.number, spec.task, spec.run_id)
        trace = traceback.format_exc()
        outcome = _failure(ErrorKind.INTERNAL, f"nbflow failed: {type(e).__name__}: {e}", executed.failed_cell())
    finally:
        if timer is not None:
            timer.cancel()
        if sampler is not None:
            sampler.cancel()
        if meter is not None:
            meter.sample()  # the last numbers, before the kernel stops
        kernel_output = kernel.output() if kernel is not None else ""
        if kernel is not None:
            if release is not None:
                release(kernel)
            else:
                await kernel.stop()
        limits.remove_cgroup(applied.cgroup)
    outcome = await _finish_copies(spec, outcome)
    if outcome.get("error") and outcome.get("error_cell") is not None:
        outcome["error"] += _text_line(spec.source, outcome["error_cell"])
    text = executed.log() + (f"\n--- kernel process output ---\n{kernel_output}" if kernel_output.strip() else "")
    if trace:
        text += f"\n--- nbflow internal error ---\n{trace}"
    usage: dict[str, Any] = {}
    if meter is not None:
        usage = {"peak_rss": max(meter.peak_rss, limits.cgroup_peak(applied.cgroup) or 0) or None,
                 "cpu_seconds": round(meter.cpu_seconds, 3)}
    if outcome.get("error_cell") is not None:
        outcome["error_execution_count"] = executed.execution_count(outcome["error_cell"])
    return AttemptResult(started_at=started, ended_at=time.time(), log=_clip(text), pid=os.getpid(), host=HOST,
                         resources=applied.as_json(spec.gpu_ids), kernel_start=kernel.how if kernel else None,
                         kernel_start_ms=round(kernel.start_ms, 1) if kernel else None, **usage, **outcome)


class _BelowBaseline(Exception):
    """The memory limit is below what the kernel uses before running anything."""


async def _sample(meter: Any) -> None:
    """Sample the kernel's memory and CPU time while the notebook runs."""
    from .limits import SAMPLE_EVERY

    while True:
        meter.sample()
        await asyncio.sleep(SAMPLE_EVERY)


def _over_limit(spec: AttemptSpec, applied: Any, meter: Any, what: str) -> str:
    """Why an attempt ended memory_exceeded: the limit, how it was enforced, and the peak seen."""
    if meter is not None:
        meter.sample()
    peak = max(meter.peak_rss if meter is not None else 0, 0)
    how = f", enforced by {applied.memory_by}" if applied.memory_by else ""
    return (f"the notebook went over its memory limit of {format_size(spec.memory)}{how} ({what}); peak resident memory "
            f"{format_size(peak)}. Fix: raise memory: for this task, or make the notebook use less")


async def _cancellable(work: Awaitable[None]) -> None:
    """Await `work`, letting a cancellation of the attempt through as CancelledError: nbclient turns any
    cancellation of a running cell into DeadKernelError, which would record an interrupted run as a crash (and, at
    interpreter shutdown, be reported as an unhandled exception)."""
    cancelled = False

    async def guarded() -> None:
        try:
            await work
        except BaseException:
            me = asyncio.current_task()
            if cancelled or (sys.version_info >= (3, 11) and me is not None and me.cancelling()):
                raise asyncio.CancelledError from None  # it was stopped on purpose: end as cancelled
            raise

    inner = asyncio.ensure_future(guarded())
    try:
        await asyncio.shield(inner)
    except asyncio.CancelledError:
        cancelled = True
        inner.cancel()
        await asyncio.wait([inner])  # nbclient stops the cell and papermill saves the notebook as it stands
        if not inner.cancelled():
            inner.exception()  # collected: it is reported through the attempt, never as "never retrieved"
        raise


async def _papermill(spec: AttemptSpec, kernel: Kernel, on_cell: CellProgress | None = None) -> None:
    """papermill's execute_notebook, in steps: parameterize, execute cell by cell in the given kernel (papermill
    records each cell's status and times), write, and raise the notebook's own error.

    papermill.execute_notebook itself cannot be handed a started kernel and client, and it changes the process's
    working directory, which many notebooks running at once in one process cannot share."""
    from nbclient.exceptions import CellExecutionError
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.exceptions import PapermillExecutionError
    from papermill.execute import prepare_notebook_metadata, raise_for_execution_errors, remove_error_markers

    nb = _parameterize(_load(spec.source), dict(spec.parameters), spec.kernel)
    nb = remove_error_markers(prepare_notebook_metadata(nb, spec.source, spec.output))
    nb_man = _manager_class()(nb, output_path=spec.output, progress_bar=False, log_output=False)
    client = PapermillNotebookClient(nb_man, km=kernel.km, kernel_name=spec.kernel, timeout=spec.cell_timeout,
                                     startup_timeout=60, log=log.getChild("nbclient"), log_output=False)
    client.kc = kernel.kc
    client.reset_execution_trackers()
    nb_man.notebook_start()
    saver = asyncio.ensure_future(_save_periodically(nb_man))
    positions = _source_positions(client.nb.cells)
    try:
        for index, cell in enumerate(client.nb.cells):
            try:
                position = positions[index]
                if on_cell is not None and cell.cell_type == "code" and position is not None:
                    on_cell(position, len(positions) - positions.count(None), time.time())
                nb_man.cell_start(cell, index)
                await client.async_execute_cell(cell, index)
            except CellExecutionError as ex:
                nb_man.cell_exception(client.nb.cells[index], cell_index=index, exception=ex)
                break
            finally:
                nb_man.cell_complete(client.nb.cells[index], cell_index=index)
        if kernel.info.get("language_info"):  # what the kernel answered when it became ready: it does not change
            client.nb.metadata["language_info"] = kernel.info["language_info"]
        else:
            info = await client.async_wait_for_reply(kernel.kc.kernel_info())
            if info is not None:
                client.nb.metadata["language_info"] = info["content"]["language_info"]
        client.set_widgets_metadata()
    finally:
        saver.cancel()
        nb_man.cleanup_pbar()
        nb_man.notebook_complete()
    try:
        raise_for_execution_errors(nb_man.nb, spec.output)  # notebook_complete wrote it; on error this adds the marker
    except PapermillExecutionError:
        _relabel_error_marker(spec.output)
        raise


def _source_positions(cells: list[Any]) -> list[int | None]:
    """Each executed cell's 1-based position in the source notebook (None for papermill's injected cells)."""
    out: list[int | None] = []
    position = 0
    for cell in cells:
        if set(cell.get("metadata", {}).get("tags", [])) & _MARKER_TAGS:
            out.append(None)
        else:
            position += 1
            out.append(position)
    return out


def _relabel_error_marker(path: str) -> None:
    """papermill's banner says "An Exception was encountered at 'In [7]'"; name the cell as nbflow does everywhere:
    "cell 5 (In [7])"."""
    executed = _Executed(path)
    index = executed.failed_cell()
    cells = executed.nb.get("cells", [])
    if index is None or not cells or "papermill-error-cell-tag" not in cells[0].get("metadata", {}).get("tags", []):
        return
    label = cell_label(index, executed.execution_count(index))
    cells[0]["source"] = ('<span style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;">'
                          f'An exception was encountered at <a href="#papermill-error-cell">{label}</a>.</span>')
    with open(path, "w", encoding="utf-8") as f:
        json.dump(executed.nb, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")


async def _finish_copies(spec: AttemptSpec, outcome: dict[str, Any]) -> dict[str, Any]:
    """Write the executed notebook where the task's Ploomber product says too; a copy that cannot be written fails a
    successful attempt (a missing product would poison lineage), never retried."""
    if not spec.notebook_copies or not os.path.exists(spec.output):
        return outcome
    problem = await asyncio.to_thread(_write_copies, spec.output, spec.notebook_copies)
    if problem is None or outcome["status"] != AttemptState.SUCCEEDED:
        return outcome
    return {**_failure(ErrorKind.ARTIFACT, problem, None), "retriable": False}


def _write_copies(executed: str, copies: tuple[str, ...]) -> str | None:
    """Copy the executed notebook to each `.ipynb` and convert it for each `.html` (nbconvert); what went wrong, or None."""
    import shutil

    for target in copies:
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if target.endswith(".html"):
                import nbformat
                from nbconvert import HTMLExporter

                notebook = nbformat.read(executed, as_version=4)  # type: ignore[no-untyped-call]
                body, _ = HTMLExporter().from_notebook_node(notebook)  # type: ignore[no-untyped-call]
                with open(target, "w", encoding="utf-8") as f:
                    f.write(body)
            else:
                shutil.copyfile(executed, target)
        except OSError as e:
            return f"cannot write the executed notebook to {target}: {e.strerror or e}. Fix: make that folder writable"
    return None


def _text_line(source: str, cell: int) -> str:
    """' (clean.py line 14)' for a failing cell of a text notebook, so the error points into the file people edit."""
    from .. import textnb

    if not textnb.is_text(source):
        return ""
    try:
        text = textnb.read_text(source, source)
        lines = textnb.cell_lines(text, textnb.parse(text, source, source)["cells"])
    except Exception:  # noqa: BLE001 - the file changed or vanished since: the cell index alone still says where
        return ""
    line = lines[cell] if 0 <= cell < len(lines) else 0
    return f" ({os.path.basename(source)} line {line})" if line else ""


class ArtifactError(Exception):
    """The executed notebook cannot be written (its folder is gone, not a folder, or not writable); the cause is
    the OSError."""


async def _save_periodically(nb_man: Any) -> None:
    """Write the running notebook every SAVE_EVERY seconds, also in the middle of a long cell: it can be watched as
    it runs, and a runner killed mid-cell leaves its last save behind (shown as partial). A failing save is left to
    the next save of the notebook's own steps, which reports it."""
    while True:
        await asyncio.sleep(SAVE_EVERY)
        try:
            nb_man.save()
        except ArtifactError:
            return


def _load(path: str) -> Any:
    """The source notebook as papermill's load_notebook_node gives it, without the warnings it would print.

    Cells of an nbformat 4.5 notebook saved by older tools lack ids: nbformat warns about it on every read,
    and silencing that would change the process's warning filters; so missing ids are added here first.
    A notebook without a parameters cell gets an empty `injected-parameters` cell on top, which papermill
    replaces with the parameters: the same place it would inject them, without its warning on the terminal.
    An nbformat 4 notebook is not validated against nbformat's schema here (nbformat would only log what it
    finds, and that validation was a sizeable share of the runner's time per task)."""
    import nbformat
    from papermill import __version__

    from .. import textnb

    if textnb.is_text(path):  # a jupytext notebook: the one place nbflow reads one to run it
        raw = textnb.parse(textnb.read_text(path, path), path, path)
        meta = raw["metadata"]
        if not (meta.get("kernelspec") or {}).get("language") and not meta.get("language_info"):
            meta["language_info"] = {"name": "python"}  # a .py/.md file without a jupytext header: Python (papermill asks)
    else:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    if raw.get("nbformat") == 4 and raw.get("nbformat_minor", 0) >= 5:
        for cell in raw.get("cells", []):
            cell.setdefault("id", uuid.uuid4().hex[:8])
    if raw.get("nbformat") == 4:
        nb = nbformat.v4.upgrade(nbformat.v4.to_notebook_json(raw))  # type: ignore[no-untyped-call]  # as nbformat.reads
    else:  # an older format: nbformat converts it
        nb = nbformat.v4.upgrade(nbformat.reads(json.dumps(raw), as_version=4))  # type: ignore[no-untyped-call]
    nb.metadata.setdefault("papermill", {"default_parameters": {}, "parameters": {}, "environment_variables": {},
                                         "version": __version__})
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
    if not any({"parameters", "injected-parameters"} & set(c.metadata["tags"]) for c in nb.cells):
        nb.cells.insert(0, _code_cell("", ["injected-parameters"]))
    return nb


def _code_cell(source: str, tags: list[str]) -> Any:
    """A new code cell, as nbformat.v4.new_code_cell makes it, without validating what is valid by construction."""
    import nbformat
    from nbformat.corpus.words import generate_corpus_id

    return nbformat.from_dict({"id": generate_corpus_id(), "cell_type": "code",  # type: ignore[no-untyped-call]
                               "metadata": {"tags": tags}, "execution_count": None, "source": source, "outputs": []})


def _parameterize(nb: Any, parameters: dict[str, Any], kernel_name: str) -> Any:
    """papermill's parameterize_notebook: the parameters as code in the kernel's language, in an `injected-parameters`
    cell that replaces the one there, or follows the `parameters` cell (the notebook has one of them: see _load)."""
    from papermill.engines import papermill_engines
    from papermill.translators import translate_parameters
    from papermill.utils import find_first_tagged_cell_index

    language = papermill_engines.nb_language(None, nb, None)
    cell = _code_cell(translate_parameters(kernel_name, language, parameters, "Parameters"), ["injected-parameters"])
    injected = find_first_tagged_cell_index(nb, "injected-parameters")
    if injected >= 0:
        nb.cells = [*nb.cells[:injected], cell, *nb.cells[injected + 1:]]
    else:
        at = find_first_tagged_cell_index(nb, "parameters") + 1
        nb.cells = [*nb.cells[:at], cell, *nb.cells[at:]]
    nb.metadata.papermill["parameters"] = parameters
    return nb


@functools.cache
def _manager_class() -> type:
    """papermill's NotebookExecutionManager, saving the executed notebook at most every SAVE_EVERY seconds while
    it runs (and always at the end). papermill writes and re-validates the whole notebook at every cell start
    and end: ~10 ms each, most of a short notebook's time. A long notebook is still saved as it goes."""
    from papermill.engines import NotebookExecutionManager

    class ThrottledManager(NotebookExecutionManager):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.nbflow_saved = time.monotonic()
            self.nbflow_final = False

        def save(self, **kwargs: Any) -> None:
            if "nb" in kwargs:  # papermill's catch_nb_assignment: a callback may hand over a new copy
                self.nb = kwargs["nb"]
            if self.output_path and (self.nbflow_final or time.monotonic() - self.nbflow_saved >= SAVE_EVERY):
                try:
                    _write(self.nb, self.output_path)
                except OSError as e:
                    raise ArtifactError(self.output_path) from e
                self.nbflow_saved = time.monotonic()

        def notebook_complete(self, **kwargs: Any) -> None:
            self.nbflow_final = True
            super().notebook_complete(**kwargs)

    return ThrottledManager


def _write(nb: Any, path: str) -> None:
    """The executed notebook as papermill writes it (nbformat's JSON), without re-validating the document nbflow built."""
    from nbformat.v4.nbjson import writes

    text = writes(nb)  # type: ignore[no-untyped-call]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _clip(log: str) -> str:
    return log if len(log) <= LOG_LIMIT else log[: LOG_LIMIT // 2] + "\n... (truncated) ...\n" + log[-LOG_LIMIT // 2:]


def _failure(kind: ErrorKind, message: str, cell: int | None, ename: str | None = None,
             evalue: str | None = None) -> dict[str, Any]:
    return {"status": AttemptState.FAILED, "error_kind": kind, "error": message, "error_cell": cell, "ename": ename,
            "evalue": evalue, "retriable": True}


class _Executed:
    """The executed notebook papermill wrote, parsed once, for the failing cell and the log."""

    def __init__(self, path: str) -> None:
        self.path = path

    @functools.cached_property
    def nb(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as f:
                found = json.load(f)
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def _source_cells(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Cells with their index in the source notebook: papermill's injected and marker cells skipped."""
        index = 0
        for cell in self.nb.get("cells", []):
            if not set(cell.get("metadata", {}).get("tags", [])) & _MARKER_TAGS:
                yield index, cell
                index += 1

    def execution_count(self, index: int) -> int | None:
        """The In [n] of the cell at this source index (None when it never ran)."""
        for i, cell in self._source_cells():
            if i == index:
                count = cell.get("execution_count")
                return count if isinstance(count, int) else None
        return None

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
        """Streams, displayed values (their text/plain) and tracebacks of the executed notebook, as a terminal would
        have shown them."""
        parts = []
        for index, cell in self._source_cells():
            for out in cell.get("outputs", []):
                kind = out.get("output_type")
                if kind == "stream":
                    parts.append(_text(out.get("text", "")))
                elif kind in ("display_data", "execute_result"):
                    plain = _text(out.get("data", {}).get("text/plain", ""))
                    if plain:
                        parts.append(plain if plain.endswith("\n") else plain + "\n")
                elif kind == "error":
                    label = cell_label(index, cell.get("execution_count"))
                    parts.append(f"[{label}] " + _ANSI.sub("", "\n".join(out.get("traceback", []))) + "\n")
        return "".join(parts)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)
