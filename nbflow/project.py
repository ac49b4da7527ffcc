"""nbflow's Python API: what the CLI, the server extension, the widget and notebooks call. The faces use only this
class: they never open the store themselves."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import difflib
import functools
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import dag, paths
from .claims import Claim, Held, claims_of, first_conflict
from .config import load_config
from .engine import plan
from .engine.run import Engine, EventSink, RunPlan, RunSummary, TaskOutcome
from .errors import (
    ConflictError,
    CycleError,
    CycleRefusedError,
    KernelNotFoundError,
    NbflowError,
    NotebookError,
    NotFoundError,
    ResourceError,
    RunConflictError,
)
from .liveness import HOST, RUN_TTL_SECONDS, Holder, command_line, gone, pid_alive
from .model import Config, Pipeline, Task
from .notebook import cell_tags, located, read_tasks
from .notebook import load as load_notebook
from .provenance import code_version
from .records import AlertRecord, AttemptRecord, ClaimRecord, RunDetail, RunRecord, TaskRecord
from .states import DONE_OK, UNFINISHED, AttemptState, DeliveryState, RunState, TaskState
from .sync import run_sync
from .textnb import notebook_format

if TYPE_CHECKING:
    from .engine.budget import Budget
    from .executors.base import Executor
    from .ops.alerts import AlertService
    from .ops.settings import OpsSettings
    from .schedule.backfill import BackfillSummary
    from .schedule.clock import Clock
    from .schedule.daemon import Scheduler
    from .schedule.spec import ScheduleSpec, SensorSpec
    from .schedule.work import RunRequest
    from .store import Store


@dataclass(frozen=True)
class PlannedTask:
    task: str
    action: str  # "run" or "skip"
    reason: str


@dataclass(frozen=True)
class PipelineState:
    """The pipeline with one run's task states: what the panel, the widget and `graph --run` draw."""

    project: str  # the project's name
    pipeline: Pipeline
    parameters: Mapping[str, Any]  # the defaults a run starts from
    run: RunRecord | None  # None before the first run
    tasks: Mapping[str, TaskRecord]  # by task name; a task the run did not list has none
    attempts: tuple[AttemptRecord, ...]
    event_id: int  # the store's newest event when this was read: follow changes from here
    forecast: Mapping[str, Any] | None = None  # Project.forecast of the run: expected durations, and its ETA while it runs

    def state(self, task: str) -> TaskState:
        row = self.tasks.get(task)
        return row.status if row else TaskState.PENDING


@dataclass(frozen=True)
class _Opened:
    """The executor of one run, with the parallelism and (locally) the resource budget it runs under."""

    kind: str
    executor: Executor
    jobs: int
    budget: Budget | None


@dataclass(frozen=True)
class NotebookInfo:
    """One notebook as the pipeline sees it, for the notebook editor's sidebar. Paths are spelled as the notebook's
    tags spell them (relative to its folder); cells are indexes in the notebook."""

    task: str
    path: str  # absolute
    relpath: str  # relative to the project
    format: str  # "ipynb", or jupytext's "py:percent", "py:light", "md", "md:myst"
    paired: str | None  # the .ipynb paired with a text notebook
    ploomber: str | None  # "pipeline.yaml" or "parameters cell" when Ploomber declared the task
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    parameters_cell: int | None
    check_cells: tuple[int, ...]
    upstream_cells: tuple[tuple[str, int], ...]  # (task, cell of its upstream: tag or Ploomber declaration)
    reads: tuple[tuple[str, int], ...]  # (path, cell)
    writes: tuple[tuple[str, int], ...]
    cell_tags: tuple[tuple[str, ...], ...]  # every cell's tags
    cell_lines: tuple[int, ...]  # a text notebook's line of each cell
    tasks: tuple[str, ...]  # every task of the project, in pipeline order
    written: tuple[str, ...]  # the paths the other tasks write


@dataclass(frozen=True)
class TagEdit:
    """One cell's tag change, as POST notebook-tags takes it; swapping `add` and `remove` undoes it."""

    path: str  # the notebook, absolute
    cell: int
    add: tuple[str, ...]
    remove: tuple[str, ...]


def _replace_file(path: str, text: str) -> None:
    """Write `text` to `path` atomically (a reader sees the old file or the new one), keeping its permissions."""
    import stat
    import tempfile

    mode = stat.S_IMODE(os.stat(path).st_mode)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".nbflow-edit-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable and readable: UTC time plus a random suffix."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def _ignore(kind: str, data: Mapping[str, Any]) -> None:
    """The event sink when the caller gives none."""


WAIT_POLL_SECONDS = 0.5  # how often a waiting run looks whether the run it waits for has ended


def _refuse_conflicts(mine: list[Claim], held: list[ClaimRecord]) -> None:
    """RunConflictError when a live run's claim clashes with one of ours (the store calls this in its transaction)."""
    found = first_conflict(mine, [Held(Claim(c.project, c.path, c.mode), c.run_id,
                                       Holder(c.host, c.pid, since=c.started_at, heartbeat_at=c.heartbeat_at)) for c in held])
    if found is not None:
        theirs, ours = found
        raise RunConflictError(theirs.run_id, theirs.holder.pid, theirs.holder.host, theirs.claim.path, theirs.claim.mode, ours.mode)


def with_liveness(run: RunRecord, now: float | None = None) -> RunRecord:
    """A run recorded running whose runner is gone shows as 'crashed' (computed on read; nothing is written)."""
    if run.status != RunState.RUNNING:
        return run
    holder = Holder(run.host, run.pid, since=run.started_at, heartbeat_at=run.heartbeat_at)
    return dataclasses.replace(run, status=RunState.CRASHED) if gone(holder, RUN_TTL_SECONDS, now) else run


def is_cli_command(args: list[str]) -> bool:
    """Whether a command line is `nbflow run|resume ...` (as a script, or `python -m nbflow`)."""
    for i, arg in enumerate(args[:3]):  # `nbflow run`, `python /venv/bin/nbflow run`, `python -m nbflow run`
        if (os.path.basename(arg) == "nbflow" and i <= 1) or (arg == "nbflow" and i == 2 and args[1] == "-m"):
            return len(args) > i + 1 and args[i + 1] in ("run", "resume")
    return False


class Project:
    """A folder of notebooks with its settings, store and artifacts."""

    def __init__(self, root: str | os.PathLike[str] = ".", config: Config | None = None, store: Store | None = None) -> None:
        """`store`: an already open Store of this project to share (the server keeps one per project)."""
        self.config = config or load_config(os.fspath(root))
        self.root = self.config.root
        self.name = self.config.name
        self._store: Store | None = store
        self._owns_store = store is None
        self._alerts: AlertService | None = None

    @classmethod
    def load(cls, root: str | os.PathLike[str] = ".") -> Project:
        return cls(root)

    @property
    def store(self) -> Store:
        """The project's SQLite store, opened (created and migrated if needed) on first use. For writing."""
        if self._store is None:
            from .store import Store

            self._store = Store(self.config.store, self.name, self.root)
        return self._store

    def _reader(self) -> Store | None:
        """The store for reading, or None while it does not exist: looking at a project creates nothing."""
        if self._store is None and not os.path.exists(self.config.store):
            return None
        return self.store

    def _existing(self) -> Store:
        """The store for reading, or NotFoundError saying there is no run yet."""
        store = self._reader()
        if store is None:
            raise NotFoundError(f"the project {self.root} has no runs yet. Fix: start one with `nbflow run`")
        return store

    def close(self) -> None:
        """Close the store this Project opened (a store it was given stays open for its owner), after a bounded wait
        for alerts still being delivered."""
        if self._alerts is not None:
            self._alerts.close()
            self._alerts = None
        if self._store is not None and self._owns_store:
            self._store.close()
            self._store = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # compile side
    def compile(self) -> Pipeline:
        """Read every notebook and build the validated DAG. Nothing executes."""
        return self._build(read_tasks(self.config))

    def _build(self, tasks: list[Task]) -> Pipeline:
        try:
            return dag.build(self.root, tasks)
        except NotebookError as e:
            raise located(e, tasks) from None

    def graph(self, fmt: str = "dot", run_id: str | None = None, *, edge_labels: bool = False) -> str | bytes:
        """The DAG as DOT text, or drawn by Graphviz in any format it writes (svg, png, pdf, ...), coloured by the
        states of `run_id` when given; `edge_labels` writes each edge's reason on it."""
        from . import render

        if run_id:
            state = self.pipeline_state(run_id)
            pipeline, states = state.pipeline, {t: state.state(t) for t in state.tasks}
        else:
            pipeline, states = self.compile(), None
        dot = render.to_dot(pipeline, states, edge_labels=edge_labels)
        return dot if fmt in ("dot", "gv") else render.draw(dot, fmt)

    def pipeline_state(self, run_id: str | None = None) -> PipelineState:
        """The compiled pipeline with a run's task states (the latest run when None; no run: all pending)."""
        store = self._reader()
        event_id = store.last_event_id() if store else 0  # read first: a change after this is reported by `changes`
        pipeline = self.compile()
        run: RunRecord | None = None
        tasks: dict[str, TaskRecord] = {}
        attempts: tuple[AttemptRecord, ...] = ()
        if store is None and run_id:
            raise NotFoundError(f"no run {run_id!r}: this project has no runs yet")
        chosen = run_id or (store.latest_run_id() if store else None)
        if store is not None and chosen:
            detail = self._detail(store, chosen)
            run, tasks, attempts = detail.run, {t.task: t for t in detail.tasks}, detail.attempts
        forecast = self._forecast(store, pipeline, run, tasks, time.time())
        return PipelineState(self.name, pipeline, self.parameter_defaults(pipeline), run, tasks, attempts, event_id, forecast)

    def last_event_id(self) -> int:
        """The newest event recorded for this project (0 before any): poll it to follow changes."""
        store = self._reader()
        return store.last_event_id() if store else 0

    def parameter_warnings(self, pipeline: Pipeline, user_params: Mapping[str, Any]) -> list[str]:
        """A warning for each -p key that no parameters cell declares (it is injected anyway)."""
        declared = {p for t in pipeline.tasks.values() for p in t.parameters}
        with_cells = sorted(t.relpath for t in pipeline.tasks.values() if t.parameters_cell is not None)
        out = []
        known = sorted(declared | set(self.config.parameters))
        for key in sorted(set(user_params) - declared - set(plan.ALWAYS_INJECTED)):
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            fix = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                   else f"check the spelling, or add `{key} = ...` to a parameters cell")
            out.append(f"parameter '{key}' is not declared in any parameters cell "
                       f"(notebooks with a parameters cell: {', '.join(with_cells) or 'none'}); it is injected anyway. "
                       f"Fix: {fix}")
        return out

    def kernel_warnings(self, pipeline: Pipeline) -> list[str]:
        """A warning for each kernel a task needs that is not installed here (`run` would refuse to start)."""
        try:
            self.check_kernels(pipeline, list(pipeline.order))
        except KernelNotFoundError as e:
            return [str(e)]
        return []

    def input_warnings(self, pipeline: Pipeline, parameters: Mapping[str, Any] | None = None) -> list[str]:
        """A warning for each read that no task writes and that names no file on disk (a typo, a forgotten writes: tag).

        `parameters`: a run's -p values (dry-run). None at compile: placeholders take the defaults a run would use
        (nbflow.toml's [parameters], the parameters cells' literal values, run_date = today), and the warning says so.
        """
        if parameters is None:
            values = {**self.parameter_defaults(pipeline), **self.run_parameters(None, "compile", None)}
        else:
            values = self.run_parameters(parameters, "dry-run", None)
        out = []
        for name, template in dag.unwritten_reads(pipeline):
            used = sorted(paths.placeholders(template))
            if set(used) - set(values):
                continue  # the run itself refuses it, naming the parameter
            key = plan.resolve(template, values, pipeline.tasks[name], self.root)
            if not paths.list_files(key, self.root):
                shown = ", ".join(f"{k}={values[k]}" for k in used)
                note = f"the defaults a run would use: {shown}" if parameters is None else f"this run's parameters: {shown}"
                out.append(str(plan.missing_input_error(pipeline, pipeline.tasks[name], template, key, note)))
        return out

    def check_kernels(self, pipeline: Pipeline, names: Iterable[str]) -> None:
        """KernelNotFoundError before anything runs when a task's kernel is not installed."""
        from .executors.kernelspecs import installed_kernels

        available = installed_kernels()
        missing: dict[str, list[str]] = {}
        for n in names:
            t = pipeline.tasks[n]
            if t.kernel not in available:
                missing.setdefault(t.kernel, []).append(t.relpath)
        if missing:  # every missing kernel in one message: the user fixes them all at once
            kernel, notebooks = sorted(missing.items())[0]
            err = KernelNotFoundError(kernel, notebooks, available)
            for other, books in sorted(missing.items())[1:]:
                err.message += f"; and kernel '{other}' is not installed either (needed by {', '.join(books)})"
            raise err

    def run_parameters(self, parameters: Mapping[str, Any] | None, run_id: str, logical_date: str | None) -> dict[str, Any]:
        """Config defaults < the user's -p < what every run injects (run_id, and run_date unless given)."""
        merged = {**self.config.parameters, **(parameters or {})}
        merged["run_date"] = str(logical_date or merged.get("run_date") or dt.date.today().isoformat())
        merged["run_id"] = run_id
        return merged

    # authoring: what the notebook editor's sidebar shows and edits
    def notebook_info(self, notebook: str) -> NotebookInfo:
        """One notebook as a task: its name, neighbours, the cells holding its tags, every cell's tags, and what the
        tag editor completes (task names, the paths other tasks write, spelled as this notebook's tags would)."""
        pipeline = self.compile()
        task = self._task_of(pipeline.tasks.values(), notebook)
        nb, lines = load_notebook(task.path, task.relpath)
        folder = paths.project_key(task.folder, self.root, self.root)

        def cells(kind: str) -> tuple[tuple[str, int], ...]:
            return tuple((paths.spelled_from(k.split(":", 1)[1], folder), c) for k, c in task.tag_cells.items()
                         if k.startswith(kind + ":"))

        written = sorted({paths.spelled_from(w, folder) for t in pipeline.tasks.values() if t.name != task.name for w in t.writes})
        return NotebookInfo(
            task=task.name, path=task.path, relpath=task.relpath, format=notebook_format(task.path),
            paired=task.paired, ploomber=task.ploomber.origin if task.ploomber else None,
            upstream=task.upstream, downstream=tuple(sorted(pipeline.downstream_of(task.name))),
            parameters_cell=task.parameters_cell, check_cells=task.check_cells,
            upstream_cells=tuple((k.split(":", 1)[1], c) for k, c in task.tag_cells.items() if k.startswith("upstream:")),
            reads=cells("reads"), writes=cells("writes"), cell_tags=tuple(tuple(t) for t in cell_tags(nb, task.relpath)),
            cell_lines=lines, tasks=tuple(pipeline.order), written=tuple(written))

    def edit_tags(self, notebook: str, cell: int, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Pipeline:
        """Add and remove tags of one cell in a task's notebook file, changing nothing else in the file. Refused, with
        nothing written, when a tag does not parse or the edited pipeline does not compile (a cycle: CycleRefusedError,
        naming it). Returns the new pipeline."""
        from . import tagedit
        from .tags import parse_tag

        add, remove = list(add), list(remove)
        task = self._task_of(read_tasks(self.config), notebook)
        for tag in add:
            parse_tag(tag, task.relpath, cell)
        with open(task.path, encoding="utf-8", newline="") as f:
            text = f.read()
        edited = tagedit.edit(task.path, text, task.relpath, cell, add, remove)
        try:
            pipeline = self._build(read_tasks(self.config, {task.path: edited}))
        except CycleError as e:
            raise CycleRefusedError(e.cycle, f"the change was not written: it would make a {e.message}") from None
        except NbflowError as e:
            raise NbflowError(f"the change was not written: {e.message}") from None
        if edited != text:
            _replace_file(task.path, edited)
        return pipeline

    def edit_dependency(self, task: str, upstream: str, *, remove: bool = False) -> tuple[Pipeline, tuple[TagEdit, ...]]:
        """Add (or remove) the `upstream:` tag that makes `task` depend on `upstream`: the graph's drag and Delete.
        Adding puts it in the first cell with an upstream: tag, else the parameters cell, else the first code cell
        (the JupyterLab panel chooses the same cell in an open notebook); removing takes it off every cell that has
        it. Refused as edit_tags refuses (a cycle: CycleRefusedError). Returns the pipeline and the edits made."""
        tasks = {t.name: t for t in read_tasks(self.config)}
        if task not in tasks:
            raise NotFoundError(f"{task} is not a task of the project {self.name}. Fix: give one of {', '.join(sorted(tasks))}")
        found = tasks[task]
        nb, _ = load_notebook(found.path, found.relpath)
        tags = cell_tags(nb, found.relpath)
        tag = f"upstream:{upstream}"
        if remove:
            cells = [i for i, t in enumerate(tags) if tag in t]
            if not cells:
                raise NbflowError(f"{found.relpath} has no tag {tag}: its dependency on {upstream} comes from a path it "
                                  f"reads (or a Ploomber declaration). Fix: change that reads:/writes: tag instead")
            edits = tuple(TagEdit(found.path, c, (), (tag,)) for c in cells)
        elif any(tag in t for t in tags):
            return self.compile(), ()
        else:
            types = [c.get("cell_type") for c in nb["cells"]]
            with_upstream = [i for i, t in enumerate(tags) if any(x.startswith("upstream:") for x in t)]
            code = [i for i, kind in enumerate(types) if kind == "code"]
            cell = with_upstream[0] if with_upstream else found.parameters_cell if found.parameters_cell is not None else (code or [0])[0]
            edits = (TagEdit(found.path, cell, (tag,), ()),)
        pipeline: Pipeline | None = None
        for e in edits:
            pipeline = self.edit_tags(e.path, e.cell, e.add, e.remove)
        assert pipeline is not None
        return pipeline, edits

    def _task_of(self, tasks: Iterable[Task], notebook: str) -> Task:
        """The task whose file is `notebook` (absolute, or relative to the project folder); NotFoundError naming why not."""
        path = os.path.normpath(os.path.join(self.root, os.path.expanduser(notebook)))
        tasks = list(tasks)
        for t in tasks:
            if t.path == path:
                return t
        for t in tasks:
            if t.paired == path:
                raise ConflictError(f"{os.path.relpath(path, self.root)} is paired with {t.relpath}, the file nbflow reads "
                                    f"(jupytext). Fix: change the tags in {t.relpath}, or open the notebook in JupyterLab")
        raise NotFoundError(f"{notebook} is not a task of the project {self.name}. Fix: give the path of one of its "
                            f"notebooks, relative to {self.root}")

    # running
    def run(self, parameters: Mapping[str, Any] | None = None, *, only: Iterable[str] = (), start: Iterable[str] = (),
            end: Iterable[str] = (), force: bool = False, jobs: int | None = None, trigger: str = "manual",
            logical_date: str | None = None, schedule: str | None = None, on_event: EventSink | None = None,
            run_id: str | None = None, wait: bool = False, alerts: bool = True, executor: str | None = None,
            dask_address: str | None = None) -> RunSummary:
        """Compile, plan and execute a run; returns when every selected task has ended. Works in a notebook too.

        A live run that holds data this run would write (or writes data it would read) makes this one a
        RunConflictError before anything runs; with `wait`, it waits for that run to end instead. `alerts=False`
        raises no alert for this run (`--no-alerts`). `executor`: "local" or "dask" (default: `executor` in
        nbflow.toml); `dask_address` overrides [dask] address."""
        return run_sync(self.run_async(parameters, only=only, start=start, end=end, force=force, jobs=jobs,
                                       trigger=trigger, logical_date=logical_date, schedule=schedule, on_event=on_event,
                                       run_id=run_id, wait=wait, alerts=alerts, executor=executor, dask_address=dask_address))

    async def run_async(self, parameters: Mapping[str, Any] | None = None, *, only: Iterable[str] = (),
                        start: Iterable[str] = (), end: Iterable[str] = (), force: bool = False, jobs: int | None = None,
                        trigger: str = "manual", logical_date: str | None = None, schedule: str | None = None,
                        on_event: EventSink | None = None, run_id: str | None = None, wait: bool = False,
                        alerts: bool = True, executor: str | None = None, dask_address: str | None = None) -> RunSummary:
        """`run_id`: chosen by the caller (the server picks it before starting the runner), else a new one."""
        self._refuse_running_itself()
        pipeline = self.compile()
        if not pipeline.tasks:
            raise NbflowError(f"no notebooks to run under {self.config.notebooks} (include {list(self.config.include)}, "
                              f"exclude {list(self.config.exclude)}). Fix: run nbflow in your project folder, or set "
                              f"`notebooks` in nbflow.toml")
        selected = dag.select(pipeline, only, start, end)
        run_id = run_id or new_run_id()
        params = self.run_parameters(parameters, run_id, logical_date)
        warnings = self.parameter_warnings(pipeline, parameters or {})
        emit = on_event or _ignore
        for w in warnings:
            emit("warning", {"message": w})
        settings = self._preflight(pipeline, selected, params, executor)
        if (force or not os.path.exists(self.config.store)) and self._executor_kind(executor) == "local":
            from .executors.local import warm_up  # nothing can be skipped: every kernel will be needed

            warm_up(self.config.kernel_start, self.config.preload)
        opened = await self._open_executor(pipeline, selected, jobs, executor, dask_address)  # refuses before anything is recorded
        selection = {"only": list(only), "from": list(start), "to": list(end), "force": force}
        mine = claims_of(pipeline, selected, params, self.name)
        try:
            code = await asyncio.to_thread(code_version, self.root, [t.path for t in pipeline.tasks.values()])
            while True:
                try:
                    self.store.create_run(run_id, trigger=trigger, logical_date=params["run_date"], parameters=params,
                                          selection=selection, tasks=selected, schedule=schedule, claims=mine,
                                          check=functools.partial(_refuse_conflicts, mine), code=code)
                    break
                except RunConflictError as conflict:
                    if not wait:
                        raise
                    await self._wait_for(conflict, emit)
        except BaseException:
            await opened.executor.close(cancel=True)
            raise
        p = RunPlan(run_id, params, tuple(selected), force=force, jobs=opened.jobs)
        emit("run_started", {"run_id": run_id, "tasks": selected, "executor": opened.kind})
        summary = await self._execute(pipeline, p, on_event, opened, settings, alerts=alerts)
        summary.warnings = warnings
        return summary

    def check_run(self, parameters: Mapping[str, Any] | None = None, *, only: Iterable[str] = (), start: Iterable[str] = (),
                  end: Iterable[str] = (), executor: str | None = None) -> tuple[Pipeline, list[str], list[str]]:
        """What `run` checks before it records anything: (pipeline, selected tasks, parameter warnings); raises as run would."""
        pipeline = self.compile()
        if not pipeline.tasks:
            raise NbflowError(f"no notebooks to run under {self.config.notebooks}. Fix: add notebooks, or set `notebooks` in nbflow.toml")
        selected = dag.select(pipeline, only, start, end)
        self._preflight(pipeline, selected, self.run_parameters(parameters, "check", None), executor)
        return pipeline, selected, self.parameter_warnings(pipeline, parameters or {})

    def parameter_defaults(self, pipeline: Pipeline) -> dict[str, Any]:
        """The defaults a run starts from: every parameters cell's values (literal, else the source text), then nbflow.toml's."""
        found: dict[str, Any] = {}
        for task in pipeline.tasks.values():
            for key, value in task.parameter_defaults.items():
                found.setdefault(key, value)
        return {**found, **self.config.parameters}

    def active_runs(self) -> list[RunRecord]:
        """Runs recorded as running whose runner is alive (a dead runner's run shows as crashed, not here)."""
        store = self._reader()
        if store is None:
            return []
        return [r for r in (with_liveness(r) for r in store.list_runs(limit=100, status=RunState.RUNNING))
                if r.status == RunState.RUNNING]

    def cancel(self, run_id: str) -> RunRecord:
        """Ask the run's runner to stop (SIGTERM); it records the run and its unfinished tasks cancelled."""
        import signal

        run = with_liveness(self._existing().get_run(run_id))
        if run.status != RunState.RUNNING:
            raise ConflictError(f"run {run.id} is not running (it is {run.status}); nothing to cancel")
        if run.host != HOST:
            raise ConflictError(f"run {run.id} runs on host {run.host}, not this one ({HOST}). "
                                f"Fix: cancel it there (Ctrl-C or kill {run.pid})")
        if not run.pid or not pid_alive(run.pid, run.started_at):
            raise ConflictError(f"run {run.id}'s runner (pid {run.pid}) is gone: that pid is now another process. "
                                f"Fix: nothing to cancel; `nbflow resume {run.id}` continues the run")
        if not is_cli_command(command_line(run.pid)):  # a notebook kernel or a service calling Project.run: SIGTERM would end it
            raise ConflictError(f"run {run.id} runs inside process {run.pid}, which is not an `nbflow run` command "
                                f"(a notebook kernel or another program calling Project.run). Fix: interrupt it there")
        os.kill(run.pid, signal.SIGTERM)
        return run

    def run_conflict(self, parameters: Mapping[str, Any] | None = None, *, only: Iterable[str] = (),
                     start: Iterable[str] = (), end: Iterable[str] = ()) -> RunConflictError | None:
        """The conflict a run with these arguments would meet now (the REST API's 409), or None; records nothing."""
        store = self._reader()
        if store is None:
            return None
        pipeline = self.compile()
        selected = dag.select(pipeline, only, start, end)
        mine = claims_of(pipeline, selected, self.run_parameters(parameters, "check", None), self.name)
        try:
            _refuse_conflicts(mine, store.held_claims())
        except RunConflictError as conflict:
            return conflict
        return None

    async def _wait_for(self, conflict: RunConflictError, emit: EventSink) -> None:
        """Wait until the run that holds the conflicting data is no longer running (it ended, or its runner died)."""
        emit("waiting", {"run_id": conflict.run_id, "pid": conflict.pid, "host": conflict.host, "path": conflict.path,
                         "message": str(conflict)})
        while True:
            held = [c for c in self.store.held_claims() if c.run_id == conflict.run_id]  # it may be another project's run
            if not held or gone(Holder(held[0].host, held[0].pid, since=held[0].started_at, heartbeat_at=held[0].heartbeat_at),
                                RUN_TTL_SECONDS):
                return
            await asyncio.sleep(WAIT_POLL_SECONDS)

    def _refuse_running_itself(self) -> None:
        """A notebook that is a task of this project must not run the project: it would run itself."""
        if os.environ.get("NBFLOW_PROJECT") != self.root or not os.environ.get("NBFLOW_TASK"):
            return
        task, run_id = os.environ["NBFLOW_TASK"], os.environ.get("NBFLOW_RUN_ID", "?")
        raise ConflictError(f"this notebook is task '{task}' of run {run_id} of this very project: running the pipeline "
                            f"from inside it would run it again, and itself. Fix: exclude the notebook from the pipeline "
                            f"(exclude = [\"{task}.ipynb\"] in nbflow.toml), or start runs from a terminal or the panel")

    def _preflight(self, pipeline: Pipeline, selected: list[str], params: Mapping[str, Any],
                   executor: str | None = None) -> OpsSettings:
        """What can be checked before anything runs: placeholders, installed kernels, and what tasks ask of this machine
        (a Dask run checks kernels and resources on its workers instead, when it connects); the operations settings
        the run will use."""
        from .ops import runtime  # noqa: F401 - imported before the run is recorded: a signal then leaves no run behind

        for name in selected:
            plan.check_placeholders(pipeline.tasks[name], params)
        if self._executor_kind(executor) == "local":
            self.check_kernels(pipeline, selected)
            self.check_resources(pipeline, selected)
        return self.ops_settings(pipeline)

    def _executor_kind(self, executor: str | None) -> str:
        kind = executor or self.config.executor
        if kind not in ("local", "dask"):
            raise NbflowError(f"unknown executor {kind!r}. Fix: use local or dask")
        return kind

    def check_resources(self, pipeline: Pipeline, names: Iterable[str]) -> None:
        """ResourceError when a task asks for more CPUs, GPUs, memory or named resources than this machine has."""
        from .engine.budget import local_budget, total_memory

        budget = local_budget(self.config.cpus, self.config.gpus, self.config.resources)
        names = list(names)
        asks_memory = any(pipeline.tasks[name].policy.memory for name in names)
        memory = total_memory() if asks_memory else None  # psutil is imported only then: a no-op run stays quick
        for name in names:
            task = pipeline.tasks[name]
            problem = budget.unmet(task.policy.request, memory)
            if problem:
                raise ResourceError(name, task.relpath, problem)

    async def _open_executor(self, pipeline: Pipeline, selected: list[str], jobs: int | None, executor: str | None,
                             dask_address: str | None) -> _Opened:
        """The executor a run uses, ready: local (with this machine's budget), or connected to a Dask cluster whose workers
        were checked (shared filesystem, kernels, resources). Raises before the run is recorded."""
        kind = self._executor_kind(executor)
        if kind == "local":
            from .engine.budget import local_budget
            from .executors import LocalExecutor

            jobs = jobs or self.config.jobs
            budget = local_budget(self.config.cpus, self.config.gpus, self.config.resources)
            return _Opened(kind, LocalExecutor(max(1, min(jobs, len(selected) or 1))), jobs, budget)
        from .executors.dask import DaskExecutor

        settings = self.config.dask
        if dask_address:
            settings = dataclasses.replace(settings, address=dask_address, local_workers=None)
        dask = await DaskExecutor.start(settings, self.root, self.config.artifacts, pipeline, selected)
        return _Opened(kind, dask, jobs or dask.total_threads, None)

    async def _execute(self, pipeline: Pipeline, p: RunPlan, on_event: EventSink | None, opened: _Opened,
                       settings: OpsSettings, alerts: bool = True) -> RunSummary:
        from .ops.runtime import flush_alerts, run_observers

        emit = on_event or _ignore
        for w in settings.warnings:
            emit("warning", {"message": w})
        service = self.alert_service(settings) if alerts else None
        executor = opened.executor
        engine = Engine(self.config, pipeline, self.store, executor, on_event, project_env={"NBFLOW_PROJECT": self.root},
                        observers=run_observers(settings, self.name, service), budget=opened.budget)
        try:
            summary = await engine.execute(p)
        except BaseException:
            await executor.close(cancel=True)
            raise
        await executor.close()
        await flush_alerts(service, emit)
        return summary

    # operations: alerts, circuit breakers, forecasts (nbflow/ops/)
    def ops_settings(self, pipeline: Pipeline | None = None) -> OpsSettings:
        """[alerts], [breakers], [forecast], [openlineage] and the tasks' alert/sla, validated (ConfigError naming the
        field otherwise); with the pipeline, every `uses:` tag has its breaker. Alert targets are checked too."""
        from .ops.settings import ops_settings
        from .ops.targets import check_targets

        settings = ops_settings(self.config, pipeline)
        check_targets(settings.alerts.targets, self.config.source or os.path.join(self.root, "nbflow.toml"), self.root)
        return settings

    def alert_service(self, settings: OpsSettings | None = None) -> AlertService | None:
        """The project's alert service (one per Project, delivering in background threads); None when [alerts] names
        no target."""
        from .ops.alerts import AlertService

        settings = settings or self.ops_settings()
        if not settings.alerts.configured:
            return None
        if self._alerts is None or self._alerts.settings != settings.alerts:
            if self._alerts is not None:
                self._alerts.close(0)
            self._alerts = AlertService(self.store, self.name, self.root, settings.alerts)
        return self._alerts

    def alerts(self, limit: int = 50, offset: int = 0) -> list[AlertRecord]:
        """Recent alerts, newest first, with each delivery (sent, failed, or pending); a pending delivery whose process is
        gone shows failed. Writes nothing."""
        from .liveness import parse_owner

        store = self._reader()
        if store is None:
            return []
        out = []
        for a in store.alerts(limit, offset):
            fixed = []
            for d in a.deliveries:
                if d.status == DeliveryState.PENDING and gone(dataclasses.replace(parse_owner(d.owner)[1], since=d.created_at),
                                                              RUN_TTL_SECONDS):
                    d = dataclasses.replace(d, status=DeliveryState.FAILED,
                                            error=(d.error + "; " if d.error else "") + "its process exited before delivering it")
                fixed.append(d)
            out.append(dataclasses.replace(a, deliveries=tuple(fixed)))
        return out

    def breakers(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every circuit breaker (each `uses:` name, and each declared): state (closed, open, half_open), failures in
        its window, when it opened, the next probe, the last error and the tasks using it. Writes nothing."""
        from .ops.breakers import describe
        from .ops.settings import ops_settings

        pipeline = self.compile()
        settings = ops_settings(self.config, pipeline)  # alert targets are not checked here: this only reads
        store = self._reader()
        stored = {b.name: b for b in store.breakers()} if store else {}
        now = time.time() if now is None else now
        return [describe(spec, stored.get(name), now, sorted(t.name for t in pipeline.tasks.values() if name in t.uses))
                for name, spec in settings.breakers.items()]

    def reset_breaker(self, name: str) -> dict[str, Any]:
        """Close a breaker by hand (failures forgotten); raises a breaker_closed info alert when it was open."""
        from .ops import breakers as br
        from .ops.alerts import Alert

        known = {b["name"]: b for b in self.breakers()}
        if name not in known:
            raise NotFoundError(f"no circuit breaker '{name}' (breakers: {', '.join(known) or 'none'}). Fix: name one that a "
                                f"`uses:` tag or a [breakers.NAME] table declares (`nbflow breakers` lists them)")
        now = time.time()
        before = self.store.update_breaker(name, lambda rec: br.reset(rec or br.fresh(name, now), now))
        if before is not None and before.state != "closed":
            service = self.alert_service()
            if service is not None:
                service.raise_(Alert("breaker_closed", self.name, f"circuit breaker {name} closed", status="closed",
                                     detail="reset by hand (`nbflow breakers reset`)"))
                service.flush()
        return next(b for b in self.breakers() if b["name"] == name)

    def forecast(self, run_id: str | None = None, now: float | None = None) -> dict[str, Any]:
        """Each task's expected duration (median, p90, p95 of its last successes) and, while the run (the latest when
        None) is running, its ETA along the critical path. Writes nothing."""
        store = self._reader()
        pipeline = self.compile()
        run, tasks = None, {}
        if store is not None and (run_id or store.latest_run_id()):
            detail = self._detail(store, run_id or store.latest_run_id() or "")
            run, tasks = detail.run, {t.task: t for t in detail.tasks}
        return self._forecast(store, pipeline, run, tasks, time.time() if now is None else now) or {"tasks": {}, "run": None}

    def _forecast(self, store: Store | None, pipeline: Pipeline, run: RunRecord | None, tasks: Mapping[str, TaskRecord],
                  now: float) -> dict[str, Any] | None:
        from .ops import forecast as fc
        from .ops.settings import forecast_settings

        if store is None:
            return None
        settings = forecast_settings(self.config.forecast, self.config.source or "nbflow.toml")
        known = fc.estimates(store.task_durations(pipeline.tasks, settings.history), settings.min_history)
        out: dict[str, Any] = {"tasks": {t: e.as_json() for t, e in known.items()}, "run": None}
        if run is not None and run.status == RunState.RUNNING:
            states = {t: r.status for t, r in tasks.items() if t in pipeline.tasks}
            started = {t: r.started_at for t, r in tasks.items() if r.started_at and r.status == TaskState.RUNNING}
            forecast = fc.eta(pipeline, states, states, started, known, now, self.config.jobs)
            out["run"] = {"run_id": run.id, **forecast.as_json()}
        return out

    def resume(self, run_id: str, *, jobs: int | None = None, on_event: EventSink | None = None, alerts: bool = True,
               executor: str | None = None, dask_address: str | None = None) -> RunSummary:
        """Re-run what failed or never finished in a run, keeping what succeeded, with the run's own parameters."""
        return run_sync(self.resume_async(run_id, jobs=jobs, on_event=on_event, alerts=alerts, executor=executor,
                                          dask_address=dask_address))

    async def resume_async(self, run_id: str, *, jobs: int | None = None, on_event: EventSink | None = None,
                           alerts: bool = True, executor: str | None = None, dask_address: str | None = None) -> RunSummary:
        self._refuse_running_itself()
        run = with_liveness(self._existing().get_run(run_id))
        run_id = run.id
        if run.status == RunState.RUNNING:
            raise ConflictError(f"run {run_id} is still in progress (pid {run.pid}). Fix: wait for it, or stop that process first")
        self.store.mark_abandoned(run_id)
        pipeline = self.compile()
        rows = {r.task: r for r in self.store.run_tasks(run_id)}
        done = {t: r.cache_key or "" for t, r in rows.items() if r.status in DONE_OK and t in pipeline.tasks}
        todo = [t for t in pipeline.order if t in rows and t not in done]
        gone = sorted(set(rows) - set(pipeline.tasks))
        if gone:
            raise NbflowError(f"run {run_id} had tasks that no longer exist: {', '.join(gone)}. "
                              f"Fix: start a new run with `nbflow run` instead of resuming")
        if not todo and run.status != RunState.SUCCEEDED:  # its runner stopped after the last task ended: close the run
            self.store.finish_run(run_id, RunState.SUCCEEDED)
            return RunSummary(run_id, RunState.SUCCEEDED, [TaskOutcome(t, rows[t].status, attempts=rows[t].attempts,
                                                                       artifact=rows[t].artifact)
                                                           for t in pipeline.order if t in rows],
                              os.path.join(self.config.artifacts, run_id))
        if not todo:
            raise ConflictError(f"run {run_id} has nothing left to do: every task succeeded or was up to date")
        params = dict(run.parameters)
        settings = self._preflight(pipeline, todo, params, executor)
        opened = await self._open_executor(pipeline, todo, jobs, executor, dask_address)
        mine = claims_of(pipeline, todo, params, self.name)
        try:
            self.store.reset_tasks(run_id, todo, claims=mine, check=functools.partial(_refuse_conflicts, mine))
        except BaseException:
            await opened.executor.close(cancel=True)
            raise
        first = {t: rows[t].attempts + 1 for t in todo}
        p = RunPlan(run_id, params, tuple(todo), done=done, first_attempt=first,
                    force=bool(run.selection.get("force")), jobs=opened.jobs)
        (on_event or _ignore)("run_started", {"run_id": run_id, "tasks": todo, "executor": opened.kind})
        return await self._execute(pipeline, p, on_event, opened, settings, alerts=alerts)

    def check_resume(self, run_id: str) -> str:
        """What `resume` checks before it changes anything, for the panel's Resume / Retry failed: the run's full id,
        or the error resume would give (still running, nothing left to do, tasks that no longer exist)."""
        run = with_liveness(self._existing().get_run(run_id))
        if run.status == RunState.RUNNING:
            raise ConflictError(f"run {run.id} is still in progress (pid {run.pid}). Fix: wait for it, or cancel it first")
        pipeline = self.compile()
        rows = self._existing().run_tasks(run.id)
        gone = sorted(r.task for r in rows if r.task not in pipeline.tasks)
        if gone:
            raise NbflowError(f"run {run.id} had tasks that no longer exist: {', '.join(gone)}. "
                              f"Fix: start a new run instead of resuming")
        if run.status == RunState.SUCCEEDED and all(r.status in DONE_OK for r in rows):  # else resume closes it
            raise ConflictError(f"run {run.id} has nothing left to do: every task succeeded or was up to date")
        return run.id

    def dry_run(self, parameters: Mapping[str, Any] | None = None, *, only: Iterable[str] = (), start: Iterable[str] = (),
                end: Iterable[str] = (), force: bool = False, logical_date: str | None = None) -> list[PlannedTask]:
        """What a run would do and why, without executing or recording anything."""
        pipeline = self.compile()
        selected = dag.select(pipeline, only, start, end)
        params = self.run_parameters(parameters, "dry-run", logical_date)
        self._preflight(pipeline, selected, params)  # the errors the run would give: placeholders, missing kernels
        keys: dict[str, str] = {}
        store = self._reader()
        if store is not None:
            plan.outside_keys(store, pipeline, set(selected), keys)
        will_run: set[str] = set()
        out = []
        for name in selected:
            task = pipeline.tasks[name]
            running_up = [u for u in task.upstream if u in will_run]
            missing = None if running_up else plan.missing_input(pipeline, task, params, self.root)
            if running_up and not force:  # its inputs are not written yet: they cannot be hashed now
                action, reason = "run", f"upstream {running_up[0]} will run"
            elif missing is not None:
                action, reason = "run", f"input {missing.path} is missing: it will fail at once (missing_input)"
            elif store is None:
                action, reason = "run", "--force" if force else "never succeeded before"
            else:
                d = plan.decide(store, task, params, keys, self.root, force)
                action, reason = ("skip" if d.skip else "run"), d.reason
                if d.skip:
                    keys[name] = d.fingerprint.key
            if action == "run":
                will_run.add(name)
            out.append(PlannedTask(name, action, reason))
        return out

    # what the JupyterLab panel asks (issue 14): the run form, history grid, timeline, previews, autocomplete
    def parameter_fields(self, pipeline: Pipeline | None = None) -> list[dict[str, Any]]:
        """Each parameter a run starts with: the value the run will use (run_date = today, not the notebook's
        default), its JSON type, and the notebooks that declare it (source: notebook, config or run)."""
        pipeline = pipeline or self.compile()
        declared: dict[str, list[str]] = {}
        for task in pipeline.tasks.values():
            for name in task.parameters:
                declared.setdefault(name, []).append(task.relpath)
        defaults = self.parameter_defaults(pipeline)
        values = self.run_parameters(defaults, "(new)", None)
        values["run_date"] = self.run_parameters(self.config.parameters, "(new)", None)["run_date"]
        out = []
        for name, value in values.items():
            source = "config" if name in self.config.parameters else "notebook" if name in declared else "run"
            out.append({"name": name, "value": value, "type": _json_type(value), "declared_in": declared.get(name, []),
                        "source": source, "default": defaults.get(name), "editable": name != "run_id"})
        return out

    def executor_options(self) -> dict[str, Any]:
        """The run form's executor choice: the project's own (nbflow.toml `executor`), each executor a run may ask for,
        and where a Dask run goes (the configured scheduler's address, or a local cluster of N workers)."""
        import importlib.util

        dask = self.config.dask
        where = dask.address or f"a local cluster of {dask.local_workers or 2} workers"
        return {"default": self.config.executor, "choices": ["local", "dask"],
                "dask": {"address": dask.address, "local_workers": dask.local_workers, "where": where,
                         "installed": importlib.util.find_spec("distributed") is not None}}

    def source_fingerprint(self) -> str:
        """A short hash of nbflow.toml and the notebooks' paths, sizes and mtimes: it changes when the pipeline may
        have (a notebook added, edited or excluded), so a viewer knows to compile again. Reads no notebook."""
        import hashlib

        from .config import find_settings
        from .notebook import discover

        config = load_config(self.root)
        parts = []
        for path in [find_settings(self.root)[0] or "", *discover(config)]:
            try:
                st = os.stat(path)
                parts.append(f"{path}\0{st.st_size}\0{st.st_mtime_ns}")
            except OSError:
                parts.append(f"{path}\0-")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def history(self, limit: int = 20, offset: int = 0, *, statuses: Iterable[str] = (), trigger: str = "",
                ran_only: bool = False, include_noop: bool = True) -> tuple[list[tuple[RunRecord, list[TaskRecord]]], int]:
        """Runs newest first, each with its tasks' states (the History grid), and the total matching the filters
        (`ran_only`: a task was attempted; without `include_noop`, succeeded runs where nothing ran are left out)."""
        store = self._reader()
        if store is None:
            return [], 0
        runs, total = store.find_runs(limit, offset, statuses=list(statuses), trigger=trigger, ran_only=ran_only,
                                      include_noop=include_noop)
        out = []
        for run in runs:
            run = with_liveness(run)
            crashed = run.status == RunState.CRASHED
            tasks = [dataclasses.replace(t, status=TaskState.CRASHED) if crashed and t.status in UNFINISHED else t
                     for t in store.run_tasks(run.id)]
            out.append((run, tasks))
        return out, total

    def task_history(self, task: str, limit: int = 30) -> list[AttemptRecord]:
        """A task's newest attempts across runs, newest first (its duration trend)."""
        store = self._reader()
        return store.task_attempts(task, limit) if store else []

    def dataset_paths(self, prefix: str = "", limit: int = 50) -> list[str]:
        """Paths known to lineage that start with `prefix` (for autocompletion)."""
        store = self._reader()
        return store.dataset_paths(prefix, limit) if store else []

    def timeline(self, run_id: str) -> dict[str, Any]:
        """Each attempt of a run as phases for a Gantt chart: queued (decided to run, waiting for a slot), kernel
        start (attempt recorded until its first cell began, from the executed notebook's papermill times) and
        running; retries are further attempts. Times are UNIX seconds."""
        detail = self._detail(self._existing(), run_id)
        queued: dict[str, float] = {}
        for e in self._existing().run_events(detail.run.id):
            if e["task"] and (e["data"] or {}).get("status") == TaskState.QUEUED:
                queued.setdefault(e["task"], e["ts"])
        rows = []
        for a in detail.attempts:
            first_cell = _first_cell_start(a.artifact) if a.artifact else None
            rows.append({"task": a.task, "attempt": a.number, "status": a.status, "queued": queued.get(a.task) if a.number == 1 else None,
                         "started": a.started_at, "cells_started": first_cell, "ended": a.ended_at, "error": a.error})
        return {"run": detail.run, "attempts": rows,
                "tasks": [{"task": t.task, "status": t.status, "started": t.started_at, "ended": t.ended_at} for t in detail.tasks]}

    def artifact_notebook(self, path: str) -> dict[str, Any]:
        """The JSON of an executed notebook under this project's artifacts folder (nothing else is served): for a
        read-only preview. A notebook being written (saved every 2 s while it runs) is read as it stands."""
        import json
        from pathlib import Path

        root = Path(self.config.artifacts).resolve()
        full = Path(path if os.path.isabs(path) else os.path.join(self.root, path)).resolve()
        if not full.is_relative_to(root) or full.suffix != ".ipynb":
            raise NotFoundError(f"'{path}' is not an executed notebook of this project. Fix: give a path under "
                                f"{os.path.relpath(root, self.root)}/ as the panel lists it")
        for _ in range(3):  # a save may be in progress: read again
            try:
                with open(full, encoding="utf-8") as f:
                    found: dict[str, Any] = json.load(f)
                return found
            except FileNotFoundError:
                raise NotFoundError(f"no executed notebook '{path}' (yet). Fix: wait for the task to start") from None
            except ValueError:
                time.sleep(0.1)
        raise NbflowError(f"the executed notebook '{path}' is being written; try again")

    @staticmethod
    def cron_preview(expr: str, timezone: str = "UTC", count: int = 5, now: dt.datetime | None = None) -> dict[str, Any]:
        """A cron expression in words (cron-descriptor, when installed) and its next `count` fire times in `timezone`."""
        from .schedule.cron import check_cron, check_timezone, next_fires

        text = check_cron(expr, "the schedule form")
        tz = check_timezone(timezone, "the schedule form")
        found = next_fires(text, tz, (now or dt.datetime.now(dt.timezone.utc)).astimezone(tz), count)
        return {"cron": text, "timezone": timezone, "description": describe_cron(text),
                "next": [t.astimezone(tz).isoformat() for t in found]}

    def diagnostics(self) -> dict[str, Any]:
        """What a bug report needs: versions, paths, installed kernels, known problems of this environment."""
        import platform
        import sqlite3
        import sys
        from importlib.metadata import PackageNotFoundError, version

        from .executors.kernelspecs import installed_kernels
        from .store.db import wal_bug_warning

        def ver(name: str) -> str:
            try:
                return version(name)
            except PackageNotFoundError:
                return "not installed"

        store = self._reader()
        warnings = [w for w in (wal_bug_warning(),) if w]
        return {
            "versions": {"nbflow": ver("nbflow"), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                         **{n: ver(n) for n in ("papermill", "nbclient", "jupyter_client", "ipykernel", "sqlite-utils")}},
            "python": sys.executable,
            "project": self.root, "name": self.name, "config": self.config.source or "(defaults: no nbflow.toml)",
            "notebooks": self.config.notebooks, "store": self.config.store,
            "schema_version": store.schema_version if store else None,  # None: no store yet (the first run creates it)
            "artifacts": self.config.artifacts,
            "kernels": installed_kernels(),
            "resources": self.local_resources(),
            "executor": self.config.executor + (f" ({self.config.dask.address})" if self.config.dask.address else ""),
            "warnings": warnings,
        }

    def local_resources(self) -> str:
        """What local runs hand out: the CPU budget, the GPU ids, named resources, and how memory limits are applied."""
        from .engine.budget import local_budget, total_memory
        from .executors.limits import memory_mechanism
        from .resources import format_size

        budget = local_budget(self.config.cpus, self.config.gpus, self.config.resources)
        named = "".join(f", {k}={v:g}" for k, v in sorted(budget.named.items()))
        return (f"cpus {budget.cpus}, gpus [{', '.join(budget.gpus)}]{named}, memory {format_size(total_memory())} "
                f"(memory: limits by {memory_mechanism()})")

    # history
    def runs(self, limit: int = 20, offset: int = 0, *, all_projects: bool = False, include_noop: bool = False) -> list[RunRecord]:
        """Recent runs, newest first (with `all_projects`, every project's in a shared store). No-op runs (every task
        up to date, nothing ran) are recorded but left out unless `include_noop`."""
        store = self._reader()
        if store is None:
            return []
        return [with_liveness(r) for r in store.list_runs(limit=limit, offset=offset, all_projects=all_projects,
                                                           include_noop=include_noop)]

    def count_runs(self, *, all_projects: bool = False, include_noop: bool = False) -> int:
        store = self._reader()
        return store.count_runs(all_projects=all_projects, include_noop=include_noop) if store else 0

    def projects(self) -> list[dict[str, Any]]:
        """The projects recorded in this project's store file (several when the store is shared)."""
        store = self._reader()
        return store.projects() if store else []

    def show(self, run_id: str | None = None) -> RunDetail:
        """One run (the latest when None) with its tasks and their attempts, as they stand now."""
        store = self._reader()
        run_id = run_id or (store.latest_run_id() if store else None)
        if store is None or run_id is None:
            raise NotFoundError("no runs yet. Fix: start one with `nbflow run`")
        return self._detail(store, run_id)

    def _detail(self, store: Store, run_id: str) -> RunDetail:
        """A run with liveness applied: a dead runner's run is crashed, and so are its unfinished tasks and attempts.
        An executed notebook is named only when it is on disk; one saved mid-run and never finished is partial."""
        run = with_liveness(store.get_run(run_id))
        crashed = run.status == RunState.CRASHED
        tasks = tuple(dataclasses.replace(t, status=TaskState.CRASHED) if crashed and t.status in UNFINISHED else t
                      for t in store.run_tasks(run.id))
        attempts = tuple(dataclasses.replace(a, status=AttemptState.CRASHED) if crashed and a.status == AttemptState.RUNNING else a
                         for a in store.attempts(run.id))
        on_disk = {p for p in {t.artifact for t in tasks} | {a.artifact for a in attempts} if p and os.path.exists(p)}
        tasks = tuple(t if t.artifact in on_disk else dataclasses.replace(t, artifact=None) for t in tasks)
        attempts = tuple(a if a.artifact in on_disk else dataclasses.replace(a, artifact=None) for a in attempts)
        partial = frozenset(a.artifact for a in attempts
                            if a.artifact and a.status in (AttemptState.RUNNING, AttemptState.CRASHED))
        return RunDetail(run, tasks, attempts, partial)

    def logs(self, run_id: str | None, task: str, attempt: int | None = None) -> AttemptRecord:
        """The attempt's output and error (the last attempt when none is given), in `run_id` or, when None, in the latest
        run where the task ran."""
        store = self._existing()
        if run_id is None:
            run_id = store.latest_run_id(task.removesuffix(".ipynb"))
            if run_id is None:
                known = self.compile().tasks
                hint = (f"tasks are: {', '.join(known)}" if task not in known else "run it with `nbflow run`")
                raise NotFoundError(f"task '{task}' has not run in any run of this project. Fix: {hint}")
        task = task.removesuffix(".ipynb")
        detail = self._detail(store, run_id)
        run = detail.run
        attempts = [a for a in detail.attempts if a.task == task]
        if not attempts:
            rows = {r.task: r for r in detail.tasks}
            row = rows.get(task)
            if row and row.status == TaskState.SKIPPED:
                raise NotFoundError(f"task '{task}' did not run in run {run.id}: {row.reason}. "
                                    f"Fix: ask for that run's logs instead")
            if row:
                raise NotFoundError(f"task '{task}' did not run in run {run.id} ({row.status}: {row.reason or '-'})")
            raise NotFoundError(f"run {run.id} has no attempt of task '{task}'. Tasks in that run: {', '.join(sorted(rows))}")
        chosen = attempts[-1] if attempt is None else next((a for a in attempts if a.number == attempt), None)
        if chosen is None:
            raise NotFoundError(f"task '{task}' in run {run.id} has attempts {[a.number for a in attempts]}, not {attempt}")
        return chosen

    def attempt_io(self, run_id: str, task: str, attempt: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """What one attempt read and wrote: dataset versions (path, sha256, size, producer)."""
        found = self.logs(run_id, task, attempt)
        return self._existing().attempt_io(found.id)

    def diff(self, a: str, b: str, task: str | None = None) -> dict[str, Any]:
        """What changed from run `a` to run `b`: parameters, code version, each task's status, duration, whether it ran
        and why not, the files it read and wrote whose hashes differ, and the executed notebooks cell by cell (for
        `task`, else for every task that ran in both). JSON-ready; the REST route `runs/compare` answers it."""
        from . import rundiff

        store = self._existing()
        run_a, run_b = self._detail(store, a), self._detail(store, b)
        if task is not None:
            task = task.removesuffix(".ipynb")
            if task not in {t.task for t in run_a.tasks} | {t.task for t in run_b.tasks}:
                raise NotFoundError(f"task '{task}' is in neither run {run_a.run.id} nor {run_b.run.id}. Fix: name a task "
                                    f"of these runs ({', '.join(sorted({t.task for t in run_a.tasks}))})")

        def io(detail: RunDetail, name: str) -> dict[str, list[dict[str, Any]]] | None:
            attempt = self._effective_attempt(store, detail, name)
            return store.attempt_io(attempt.id) if attempt else None

        def notebook(detail: RunDetail, name: str) -> dict[str, Any] | None:
            row = next((t for t in detail.tasks if t.task == name), None)
            path = row.artifact if row else None
            if not path or not os.path.exists(path):
                return None
            with open(path, encoding="utf-8") as f:
                found: dict[str, Any] = json.load(f)
            return found

        return rundiff.compare(run_a, run_b, io, notebook, task)

    @staticmethod
    def _effective_attempt(store: Store, detail: RunDetail, task: str) -> AttemptRecord | None:
        """The task's last attempt in the run, or, when it was skipped as up to date, the attempt whose results it reused."""
        attempts = [x for x in detail.attempts if x.task == task]
        if attempts:
            return attempts[-1]
        row = next((t for t in detail.tasks if t.task == task), None)
        if row is not None and row.status == TaskState.SKIPPED and row.cache_key:
            return store.last_success(task, row.cache_key)
        return None

    def usual_durations(self, tasks: Iterable[str], before: float | None = None) -> dict[str, float]:
        """Each task's usual duration: the median of its last 20 successful attempts (started before `before`)."""
        import statistics

        store = self._reader()
        if store is None:
            return {}
        out = {}
        for name in tasks:
            found = store.attempt_durations(name, before=before)
            if found:
                out[name] = statistics.median(found)
        return out

    def report(self, run_id: str | None, output: str | os.PathLike[str] | None = None) -> str:
        """Write one self-contained HTML file about a run (when None, the latest where something ran): graph, timeline,
        parameters, code version, tasks against their usual durations, errors, lineage and every executed notebook.
        `output` defaults to nbflow-report-RUN.html in the current folder. Returns its path."""
        from .report import render as render_report

        store = self._existing()
        if run_id is None:
            ran = self.runs(limit=1)
            run_id = ran[0].id if ran else None
        detail = self.show(run_id)
        state = self.pipeline_state(detail.run.id)
        usual = self.usual_durations([t.task for t in detail.tasks], before=detail.run.created_at)
        io: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row in detail.tasks:
            attempt = self._effective_attempt(store, detail, row.task)
            if attempt is not None:
                io[row.task] = store.attempt_io(attempt.id)
        notebooks = {row.task: row.artifact for row in detail.tasks if row.artifact and os.path.exists(row.artifact)}
        page = render_report(self.name, detail, state.pipeline, usual, io, notebooks)
        path = os.path.abspath(output or f"nbflow-report-{detail.run.id}.html")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
        return path

    def lineage(self, target: str) -> dict[str, Any]:
        """Provenance of a file (by path) or of a task's last successful outputs (by task name); each producing attempt
        carries its parameters and code version (git commit, or its notebook's code-cell hash when not in git)."""
        found = self._lineage(target)
        _code_versions(found, self._notebook_relpath)
        return found

    def _notebook_relpath(self, task: str) -> str:
        return os.path.relpath(os.path.join(self.config.notebooks, task + ".ipynb"), self.root).replace(os.sep, "/")

    def _lineage(self, target: str) -> dict[str, Any]:
        if target.removesuffix(".ipynb") in self.compile().tasks:
            return {"task": self._existing().task_lineage(target.removesuffix(".ipynb"))}
        store = self._existing()
        keys = self.dataset_keys(target)
        for key in keys:
            tree = store.lineage(key)
            if tree is not None:
                return {"path": tree}
        raise NotFoundError(f"no task has recorded reading or writing '{target}' (looked for {', '.join(keys)}). Fix: give "
                            f"the file's path (absolute, or relative to the current folder or to the project), or a task name")

    def dataset_keys(self, path: str) -> list[str]:
        """The keys a user's spelling of a file may mean, most likely first: relative to the current folder, to the
        project, or absolute (the tags' normalisation); then the same with symlinks followed."""
        if paths.is_url(path):
            return [paths.project_key(path, self.root, self.root)]
        bases = [os.getcwd(), self.root]
        keys = [paths.project_key(path, base, self.root) for base in bases]
        real_root = os.path.realpath(self.root)
        keys += [paths.project_key(os.path.realpath(os.path.join(base, os.path.expanduser(path))), real_root, real_root)
                 for base in bases]
        return list(dict.fromkeys(keys))

    # scheduling: the logic is in nbflow/schedule/; these are the entry points for the CLI and the panel
    def schedule_config(self) -> tuple[list[ScheduleSpec], list[SensorSpec]]:
        """The schedules and sensors nbflow.toml declares, validated (re-reads the file: the scheduler reloads it)."""
        from .schedule.spec import config_schedules, config_sensors

        config = load_config(self.root)
        where = config.source or os.path.join(self.root, "nbflow.toml")
        return config_schedules(config.schedules, where), config_sensors(config.sensors, where, self.root)

    def schedules(self, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Every schedule with its next fire times, paused flag, last slot and slot counts. Writes nothing."""
        from .schedule.api import describe_schedules

        return describe_schedules(self._reader(), self.schedule_config()[0], now or dt.datetime.now(dt.timezone.utc))

    def sensors(self) -> list[dict[str, Any]]:
        """Every sensor with the files it triggered (and their runs) and the files waiting. Writes nothing."""
        from .schedule.api import describe_sensors

        return describe_sensors(self._reader(), self.schedule_config()[1], self.root)

    def scheduler_status(self) -> dict[str, Any]:
        """Whether a scheduler is running for this project (its lease is fresh and its process alive), and which."""
        from .schedule.api import scheduler_status

        return scheduler_status(self._reader(), dt.datetime.now(dt.timezone.utc))

    def slots(self, schedule: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recorded slots (of one schedule, if given), newest first: status, reason, run id."""
        store = self._reader()
        return store.items("slot", schedule, limit=limit, newest_first=True) if store else []

    def add_schedule(self, name: str, cron: str, *, timezone: str = "UTC", parameters: Mapping[str, Any] | None = None,
                     only: Iterable[str] = (), catchup: str = "latest", max_concurrent: int = 1, overlap: str = "queue",
                     jobs: int | None = None, sla: str | float | None = None, alert: str | None = None) -> dict[str, Any]:
        """Add a schedule to the store (as `nbflow schedule add` does); its first slot is the first after now."""
        from .schedule.spec import schedule_from, schedule_row

        if name in {s.name for s in self.schedule_config()[0]}:
            raise ConflictError(f"schedule '{name}' is declared in {self.config.source}. Fix: edit it there, or pick another name")
        table: dict[str, Any] = {"cron": cron, "timezone": timezone, "parameters": dict(parameters or {}), "only": list(only),
                                 "catchup": catchup, "max_concurrent": max_concurrent, "overlap": overlap, "jobs": jobs,
                                 "sla": sla, "alert": alert}
        spec = schedule_from(name, table, "nbflow schedule add", source="cli")
        self.store.add_schedule(schedule_row(spec), time.time())
        return next(s for s in self.schedules() if s["name"] == name)

    def pause_schedule(self, name: str) -> None:
        """Stop firing a schedule; its slots due while paused are not run later (backfill runs them)."""
        self._sync_schedules()
        self.store.set_schedule_paused(name, True, time.time())

    def resume_schedule(self, name: str) -> None:
        """Fire a paused schedule again, from its next slot after now."""
        self._sync_schedules()
        self.store.set_schedule_paused(name, False, time.time())

    def remove_schedule(self, name: str) -> None:
        """Remove a schedule added with the CLI (its recorded slots stay as history)."""
        if name in {s.name for s in self.schedule_config()[0]}:
            raise ConflictError(f"schedule '{name}' is declared in {self.config.source}. Fix: delete its [schedules.{name}] "
                                "table there (or pause it with `nbflow schedule pause`)")
        self.store.remove_schedule(name)

    def _sync_schedules(self) -> None:
        from .schedule.spec import schedule_row

        self.store.sync_config_schedules([schedule_row(s) for s in self.schedule_config()[0]], time.time())

    def scheduler(self, *, clock: Clock | None = None, standby: bool = True, on_event: Any = None) -> Scheduler:
        """A scheduler for this project (call `tick()` yourself, or `serve()`); `run_scheduler` runs one until stopped.
        A lost lease, an abandoned slot and a skipped slot raise alerts."""
        from .schedule.daemon import Scheduler

        return Scheduler(self.store, self.root, _ProjectRuns(self), clock=clock, specs=self.schedule_config,
                         on_event=self._scheduler_alerts(on_event), standby=standby)

    def _scheduler_alerts(self, on_event: Any) -> Callable[[str, Mapping[str, Any]], None]:
        """The scheduler's event sink: the caller's, and an alert for the events that deserve one."""
        from .ops.alerting import AlertRouter, scheduler_alert

        def sink(kind: str, data: Mapping[str, Any]) -> None:
            if on_event is not None:
                on_event(kind, data)
            try:
                alert = scheduler_alert(kind, data, self.name)
                service = self.alert_service() if alert is not None else None
                if alert is None or service is None:
                    return
                router = AlertRouter(service.raise_, {})
                row = self.store.schedule_row(data["schedule"]) if data.get("schedule") else None
                router.schedule_level = row.get("alert") if row else None
                router(alert)
            except NbflowError as e:  # a broken [alerts] table: said by the next run; the scheduler goes on
                if on_event is not None:
                    on_event("error", {"message": f"alert not raised: {e}"})

        return sink

    def run_scheduler(self, *, standby: bool = True, stop_timeout: float = 60.0, on_event: Any = None) -> None:
        """The scheduler daemon in the foreground until SIGTERM/SIGINT: running runs get `stop_timeout` s to finish,
        then are cancelled (and resumed by the next scheduler); a second signal cancels them at once."""
        from .schedule.daemon import run_forever

        self.schedule_config()  # a broken nbflow.toml is an error before the daemon starts
        self.ops_settings()
        run_forever(self.scheduler(standby=standby, on_event=on_event), stop_timeout)

    def backfill_size(self, start: str, end: str, schedule: str | None = None) -> int:
        """How many slots a backfill from start to end would cover; raises as `backfill` would for bad dates or names.
        Writes nothing."""
        from .schedule import backfill as bf
        from .schedule.clock import SystemClock

        spec = bf.DAILY
        if schedule is not None:
            found = {s.name: s for s in self.schedule_config()[0]}
            if schedule not in found:
                from .schedule.spec import schedule_from_row

                store = self._reader()
                row = store.schedule_row(schedule) if store else None
                if row is None:
                    raise NotFoundError(f"no schedule '{schedule}'. Fix: pick one from the Schedules tab")
                found[schedule] = schedule_from_row(row)
            spec = found[schedule]
        return len(bf.backfill_slots(spec, start, end, SystemClock().now()))

    def backfill(self, start: str, end: str, *, schedule: str | None = None, concurrency: int = 2, jobs: int | None = None,
                 parameters: Mapping[str, Any] | None = None, only: Iterable[str] = (), clock: Clock | None = None,
                 on_event: Any = None, alerts: bool = True) -> BackfillSummary:
        """One run per slot of `schedule` (or per day, when None) from start to end inclusive, `concurrency` at a time.
        Slots that already succeeded are skipped; failed, skipped and interrupted ones run again."""
        from .schedule import backfill as bf
        from .schedule.clock import SystemClock
        from .schedule.spec import schedule_from_row

        clock = clock or SystemClock()
        spec = bf.DAILY
        if schedule is not None:
            self._sync_schedules()
            row = self.store.schedule_row(schedule)
            if row is None:
                names = ", ".join(r["name"] for r in self.store.schedule_rows()) or "none"
                raise NotFoundError(f"no schedule '{schedule}' (schedules: {names}). Fix: check `nbflow schedule list`")
            spec = schedule_from_row(row)
        slots = bf.backfill_slots(spec, start, end, clock.now())
        return run_sync(bf.backfill(self.store, _ProjectRuns(self, alerts), spec, slots, clock=clock, concurrency=concurrency,
                                    parameters=parameters, only=tuple(only), jobs=jobs, on_event=on_event))



def _json_type(value: Any) -> str:
    """A parameter value's type as the run form shows it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if value is None:
        return "null"
    return "list" if isinstance(value, (list, tuple)) else "dict" if isinstance(value, Mapping) else type(value).__name__


def _first_cell_start(artifact: str) -> float | None:
    """When the first cell of an executed notebook began (papermill's cell metadata), as UNIX seconds."""
    import json

    try:
        with open(artifact, encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, ValueError):
        return None
    for cell in nb.get("cells", []):
        start = ((cell.get("metadata") or {}).get("papermill") or {}).get("start_time")
        if start:
            try:
                return dt.datetime.fromisoformat(str(start).replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
    return None


def describe_cron(expr: str) -> str | None:
    """The cron expression in plain words ("At 02:30 AM"), or None without cron-descriptor."""
    try:
        from cron_descriptor import get_description
    except ImportError:
        return None
    try:
        return str(get_description(expr))
    except Exception:  # noqa: BLE001 - a description is a nicety: the expression itself was validated by croniter
        return None


def _code_versions(node: Any, relpath: Callable[[str], str]) -> None:
    """Give every producer in a lineage answer the line people read: which code made it."""
    from .provenance import describe

    if isinstance(node, dict):
        producer = node.get("producer")
        if isinstance(producer, dict) and isinstance(producer.get("code"), dict):
            code = producer["code"]
            notebook = relpath(producer["task"])
            code["notebook"] = notebook
            code["notebook_changed"] = notebook in (code.get("changed") or []) if code.get("commit") else None
            producer["code_version"] = describe(code, notebook)
        for value in node.values():
            _code_versions(value, relpath)
    elif isinstance(node, list):
        for value in node:
            _code_versions(value, relpath)


class _ProjectRuns:
    """The scheduler's and backfill's RunStarter for a project: runs go through Project.run_async in their event loop.

    In-process on purpose: every notebook already runs in its own kernel process, so the daemon only coordinates;
    a run starts within milliseconds of its slot; and a run is the same run as `nbflow run` (same planning, so
    unchanged tasks are skipped). If the daemon dies, even by SIGKILL, its kernels exit with it (see "Crash
    safety" in docs/design.md), the run shows as crashed, and the next scheduler resumes it."""

    def __init__(self, project: Project, alerts: bool = True) -> None:
        self.project, self.alerts = project, alerts

    async def run(self, request: RunRequest, started: Callable[[str], None]) -> RunState:
        def on_event(kind: str, data: Mapping[str, Any]) -> None:
            if kind == "run_started":
                started(data["run_id"])

        summary = await self.project.run_async(dict(request.parameters), only=request.only, jobs=request.jobs,
                                               trigger=request.trigger, logical_date=request.logical_date,
                                               schedule=request.schedule, on_event=on_event, alerts=self.alerts)
        return summary.status

    async def resume(self, run_id: str) -> RunState:
        summary = await self.project.resume_async(run_id, alerts=self.alerts)  # closes a run whose tasks all ended
        return summary.status

    def liveness(self, run_id: str) -> RunState | None:
        try:
            return self.project.show(run_id).run.status
        except NotFoundError:
            return None
