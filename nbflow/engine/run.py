"""The run loop: decide run or skip as each task becomes ready, execute with retries, record every change."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import MissingInputError, StoreGoneError
from ..executors.base import AttemptResult, AttemptSpec, Executor, KernelLaunch
from ..model import Config, Pipeline
from ..records import duration
from ..states import BAD, DONE_OK, FINAL, AttemptState, ErrorKind, RunState, TaskState
from . import plan
from .budget import Budget, Grant
from .observe import Observers, RunContext, RunObserver
from .retry import backoff

if TYPE_CHECKING:
    from ..store import Store

EventSink = Callable[[str, Mapping[str, Any]], None]
HEARTBEAT_SECONDS = 5.0
INLINE_HASH_BYTES = 256 << 10  # outputs this small are hashed in the event loop (about a ms): a thread's wake-up costs more
PROGRESS_SECONDS = 1.0  # a running task's current cell is recorded at most this often (the live display hears every one)
T = TypeVar("T")
log = logging.getLogger("nbflow.engine")


class StoreCalls:
    """The engine's store calls, one at a time, in order, in a thread of their own.

    A store held locked by another process (or a slow disk) then delays only the task whose record waits, never
    the event loop that relays every running notebook's output. Each caller still awaits its write, so a task's
    success is committed before anything downstream of it starts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nbflow-store")

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._thread.shutdown(wait=True)


@dataclass
class TaskOutcome:
    task: str
    status: TaskState
    reason: str = ""
    attempts: int = 0
    seconds: float = 0.0
    error: str | None = None
    error_cell: int | None = None
    artifact: str | None = None
    error_execution_count: int | None = None  # the failing cell's In [n]


@dataclass
class RunSummary:
    run_id: str
    status: RunState
    tasks: list[TaskOutcome]
    artifacts: str
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == RunState.SUCCEEDED


@dataclass(frozen=True)
class RunPlan:
    """Everything the loop needs to know about one run (fresh or resumed)."""

    run_id: str
    parameters: Mapping[str, Any]
    tasks: tuple[str, ...]  # selected tasks still to do, in pipeline order
    done: Mapping[str, str] = field(default_factory=dict)  # task -> cache key, already done in this run
    first_attempt: Mapping[str, int] = field(default_factory=dict)  # task -> number of its next attempt
    force: bool = False
    jobs: int = 4


class Engine:
    """Runs one plan against the store through an executor. Async; the Project wraps it for sync callers."""

    def __init__(self, config: Config, pipeline: Pipeline, store: Store, executor: Executor,
                 on_event: EventSink | None = None, rng: random.Random | None = None,
                 project_env: Mapping[str, str] | None = None, observers: Sequence[RunObserver] = (),
                 budget: Budget | None = None) -> None:
        """`project_env`: set in every task's kernel besides NBFLOW_RUN_ID and NBFLOW_TASK (the project's folder).
        `observers`: told of every run, task and attempt change, and asked before each attempt (nbflow/ops/).
        `budget`: the CPUs, GPUs and named resources tasks reserve before they start (None: the executor places them)."""
        self.config, self.pipeline, self.store, self.executor = config, pipeline, store, executor
        self.budget = budget
        self.project_env = dict(project_env or {})
        self._hands_out_gpus = any(t.policy.gpus for t in pipeline.tasks.values())
        self.on_event = on_event or (lambda kind, data: None)
        self.rng = rng or random.Random()
        self.outcomes: dict[str, TaskOutcome] = {}
        self.db = StoreCalls(store)
        self.hashes = plan.HashCache()  # what a task wrote is not hashed again when the next task reads it
        self.observers = Observers(observers)
        self.run: RunContext | None = None  # set when execute starts
        self._pending: list[str] = []  # the current run's view, for looking ahead
        self._state: dict[str, TaskState] = {}
        self._selected: set[str] = set()
        self._will_run: set[str] = set()  # decided to run, not finished
        self._progress_due: set[tuple[str, str]] = set()  # running tasks whose current cell is still to be recorded
        self._latest_progress: dict[tuple[str, str], dict[str, Any]] = {}
        self._background: set[asyncio.Future[None]] = set()  # progress writes in flight

    async def execute(self, p: RunPlan) -> RunSummary:
        try:
            return await self._execute(p)
        finally:
            self.db.close()

    async def _execute(self, p: RunPlan) -> RunSummary:
        selected = set(p.tasks) | set(p.done)
        state: dict[str, TaskState] = {}
        for row in await self.db(self.store.run_tasks, p.run_id) if p.done else []:
            if row.task in p.done:  # kept from before a resume: show them as they were recorded
                state[row.task] = row.status
                self.outcomes[row.task] = TaskOutcome(row.task, row.status, row.reason or "", row.attempts, artifact=row.artifact)
        keys: dict[str, str] = dict(p.done)
        await self.db(plan.outside_keys, self.store, self.pipeline, selected, keys)
        slots = asyncio.Semaphore(p.jobs)
        pools = {name: asyncio.Semaphore(size) for name, size in self.config.pools.items()}
        pending = list(p.tasks)
        running: dict[str, asyncio.Task[None]] = {}
        self._pending, self._state, self._selected, self._will_run = pending, state, selected, set()
        beat = asyncio.create_task(self._heartbeat(p.run_id))
        status = RunState.FAILED
        self.run = RunContext(p.run_id, p.parameters, tuple(p.tasks), tuple(p.done), p.jobs, self.config, self.pipeline,
                              self.store, self.db, self.on_event)
        try:
            await self.observers.run_started(self.run)
            while pending or running:
                for name in list(pending):
                    ups = [u for u in self.pipeline.tasks[name].upstream if u in selected]
                    bad = [u for u in ups if state.get(u) in BAD]
                    if bad:
                        pending.remove(name)
                        state[name] = TaskState.UPSTREAM_FAILED
                        await self._set(p.run_id, name, TaskState.UPSTREAM_FAILED, reason=f"upstream {bad[0]} {state[bad[0]]}")
                    elif all(state.get(u) in DONE_OK for u in ups):
                        pending.remove(name)
                        running[name] = asyncio.create_task(self._task(p, name, keys, state, slots, pools))
                if not running:
                    if pending:  # cannot happen with a valid DAG; never spin
                        raise RuntimeError(f"no task can start: {pending}")
                    continue
                finished, _ = await asyncio.wait([*running.values(), beat], return_when=asyncio.FIRST_COMPLETED)
                if beat in finished:
                    beat.result()  # the heartbeat found the store gone: stop the run now
                for name in [n for n, t in running.items() if t in finished]:
                    running.pop(name).result()
            status = RunState.SUCCEEDED if all(state.get(t) in DONE_OK for t in selected) else RunState.FAILED
        except BaseException as e:
            status = RunState.CANCELLED
            gone = isinstance(e, StoreGoneError)
            for t in running.values():
                t.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)  # their attempts record the cancel
            for name in [] if gone else list(running) + pending:
                await self._set(p.run_id, name, TaskState.CANCELLED, reason="the run was interrupted")
            raise
        finally:
            beat.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)  # progress is a hint: its failure is no failure
            with contextlib.suppress(StoreGoneError):  # a store that is gone has already been reported
                await self.db(self.store.finish_run, p.run_id, status)
            self.on_event("run_finished", {"run_id": p.run_id, "status": status})
            await self.observers.run_finished(self.run, status)
        return RunSummary(p.run_id, status, [self.outcomes.get(t) or TaskOutcome(t, state.get(t, TaskState.PENDING))
                                             for t in self.pipeline.order if t in selected],
                          os.path.join(self.config.artifacts, p.run_id))

    def _launch(self, run_id: str, name: str) -> KernelLaunch:
        task = self.pipeline.tasks[name]
        env = {**self.project_env, "NBFLOW_RUN_ID": run_id, "NBFLOW_TASK": name}
        if task.policy.cpus and "OMP_NUM_THREADS" not in os.environ:  # numerical libraries: one thread per CPU granted
            env["OMP_NUM_THREADS"] = str(task.policy.cpus)
        if self._hands_out_gpus and not task.policy.gpus:  # a granted GPU id is its task's alone: the others see none
            env["CUDA_VISIBLE_DEVICES"] = ""
        return KernelLaunch(task.kernel, task.folder, tuple(sorted(env.items())), self.config.kernel_start, self.config.preload)

    def _want(self, run_id: str, name: str) -> None:
        """Start the task's kernel ahead, unless it needs GPU ids, which are known only when it starts."""
        if not self.pipeline.tasks[name].policy.gpus:
            self.executor.want(self._launch(run_id, name))

    def _look_ahead(self, p: RunPlan) -> None:
        """Ask for kernels for the tasks that will probably run next: those waiting only on tasks that are about to
        run, running, done, or themselves expected, in pipeline order. No more than the executor can start ahead
        (jobs + 2): this runs at every decision, and a long chain must not make it quadratic."""
        expected: set[str] = set()
        for name in self._pending:  # pipeline order, so upstream tasks come first
            if len(expected) >= p.jobs + 2:
                return
            ups = [u for u in self.pipeline.tasks[name].upstream if u in self._selected]
            if any(u in self._will_run or u in expected for u in ups) and all(
                    u in self._will_run or u in expected or self._state.get(u) in DONE_OK for u in ups):
                expected.add(name)
                self._want(p.run_id, name)

    async def _set(self, run_id: str, task: str, status: TaskState, duration: float | None = None, **fields: Any) -> None:
        """Record a task's state; `duration` (the last attempt's seconds) goes only to the event sink."""
        if status in (TaskState.SKIPPED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED, TaskState.BLOCKED):  # no kernel needed
            self.executor.unwant(self._launch(run_id, task))
        if status in FINAL:
            self._will_run.discard(task)
        await self.db(self.store.set_task_state, run_id, task, status, **fields)
        out = self.outcomes.setdefault(task, TaskOutcome(task, status))
        out.status = status
        for k in ("reason", "attempts", "error", "error_cell", "artifact"):
            if k in fields:
                setattr(out, k, fields[k])
        extra = {"duration": duration} if duration is not None else {}
        self.on_event("task", {"run_id": run_id, "task": task, "status": status, **fields, **extra})
        if self.run is not None:
            await self.observers.task_changed(self.run, task, status, fields)

    async def _heartbeat(self, run_id: str) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self.db(self.store.heartbeat, run_id)

    async def _task(self, p: RunPlan, name: str, keys: dict[str, str], state: dict[str, TaskState],
                    slots: asyncio.Semaphore, pools: dict[str, asyncio.Semaphore]) -> None:
        """Decide, run and record one task; a failure of nbflow itself fails this task, not the whole run."""
        try:
            await self._decide_and_run(p, name, keys, state, slots, pools)
        except StoreGoneError:
            raise  # nothing can be recorded any more: the whole run stops
        except Exception as e:  # noqa: BLE001 - recorded on the task, the other branches go on
            log.exception("task %s of run %s failed inside nbflow", name, p.run_id)
            state[name] = TaskState.FAILED
            await self._set(p.run_id, name, TaskState.FAILED, error=f"nbflow could not run this task: {type(e).__name__}: {e}",
                            ended_at=time.time())

    async def _decide_and_run(self, p: RunPlan, name: str, keys: dict[str, str], state: dict[str, TaskState],
                              slots: asyncio.Semaphore, pools: dict[str, asyncio.Semaphore]) -> None:
        task = self.pipeline.tasks[name]
        missing = await self.db(plan.missing_input, self.pipeline, task, p.parameters, self.config.root)
        if missing is not None:
            await self._missing_input(p, name, missing, state)
            return
        d = await self.db(plan.decide, self.store, task, p.parameters, dict(keys), self.config.root, p.force, self.hashes)
        key, reads, fp = d.fingerprint.key, d.reads, d.fingerprint
        if d.skip:
            assert d.last is not None
            keys[name] = key
            state[name] = TaskState.SKIPPED
            await self._set(p.run_id, name, TaskState.SKIPPED, cache_key=key, artifact=d.last.artifact, reason=d.reason)
            return
        number = p.first_attempt.get(name, 1)
        blocked = await self.observers.admit(self._context(), name, number)
        if blocked:  # an open circuit breaker: not attempted, no kernel started
            state[name] = TaskState.BLOCKED
            await self._set(p.run_id, name, TaskState.BLOCKED, reason=blocked, cache_key=key, ended_at=time.time())
            return
        await self._set(p.run_id, name, TaskState.QUEUED, reason=d.reason, cache_key=key)
        self._want(p.run_id, name)
        self._will_run.add(name)
        self._look_ahead(p)
        pool = pools.get(task.policy.pool) if task.policy.pool else None
        while True:
            result, artifact, took = await self._attempt(p, name, number, key, reads, fp.as_json(), slots, pool)
            if result.status == AttemptState.SUCCEEDED:
                keys[name] = key
                state[name] = TaskState.SUCCEEDED
                await self._set(p.run_id, name, TaskState.SUCCEEDED, duration=took, attempts=number, artifact=artifact,
                                ended_at=result.ended_at, error=None, error_cell=None, error_execution_count=None)
                self.outcomes[name].seconds = took
                return
            last_try = number >= p.first_attempt.get(name, 1) + task.policy.retries
            blocked = None
            if result.retriable and not last_try:
                delay = backoff(task.policy, number, self.rng)
                self.on_event("retry", {"run_id": p.run_id, "task": name, "attempt": number, "delay": delay, "error": result.error})
                await self.observers.retrying(self._context(), name, number, result, delay)
                await asyncio.sleep(delay)
                blocked = await self.observers.admit(self._context(), name, number + 1)
            if not result.retriable or last_try or blocked:
                final = TaskState(result.status)
                state[name] = final
                await self._set(p.run_id, name, final, duration=took, attempts=number, artifact=artifact, ended_at=result.ended_at,
                                error=result.error, error_cell=result.error_cell, error_execution_count=result.error_execution_count,
                                **({"reason": f"not retried: {blocked}"} if blocked else {}))
                out = self.outcomes[name]
                out.seconds, out.error_execution_count = took, result.error_execution_count
                return
            number += 1

    async def _missing_input(self, p: RunPlan, name: str, error: MissingInputError, state: dict[str, TaskState]) -> None:
        """An input is not there: fail at once, never retried; the kernel started ahead for the task is stopped."""
        self.executor.unwant(self._launch(p.run_id, name))
        number = p.first_attempt.get(name, 1)
        attempt_id = await self.db(self.store.start_attempt, p.run_id, name, number, None, None)
        await self.db(self.store.finish_attempt, attempt_id, AttemptState.FAILED, error_kind=ErrorKind.MISSING_INPUT,
                      error=str(error), error_cell=error.cell)
        state[name] = TaskState.FAILED
        await self._set(p.run_id, name, TaskState.FAILED, reason=f"input {error.path} is missing", attempts=number,
                        error=str(error), error_cell=error.cell, ended_at=time.time())

    async def _attempt(self, p: RunPlan, name: str, number: int, key: str, reads: list[tuple[str, str, int]], fingerprint: str,
                       slots: asyncio.Semaphore, pool: asyncio.Semaphore | None) -> tuple[AttemptResult, str, float]:
        """Run and record one attempt; returns its result, its executed notebook and its duration (as recorded)."""
        task = self.pipeline.tasks[name]
        suffix = "" if number == 1 else f".attempt-{number}"
        artifact = os.path.join(self.config.artifacts, p.run_id, f"{name}{suffix}.ipynb")
        request = task.policy.request
        grant = await self.budget.acquire(request) if self.budget is not None else None
        try:
            result, attempt_id, started = await self._run_attempt(p, name, number, key, artifact, grant, slots, pool, reads)
        finally:
            if self.budget is not None and grant is not None:
                self.budget.release(request, grant)
        writes: list[tuple[str, str, int]] = []
        if result.status == AttemptState.SUCCEEDED:
            if result.writes is not None:  # hashed where the attempt ran
                writes, missing = list(result.writes), list(result.missing)
            else:
                hash_writes = functools.partial(plan.hash_writes, task, p.parameters, self.config.root, self.hashes)
                if plan.outputs_size(task, p.parameters, self.config.root) <= INLINE_HASH_BYTES:
                    writes, missing = hash_writes()
                else:
                    writes, missing = await asyncio.to_thread(hash_writes)
            if missing:
                result = dataclasses.replace(result, status=AttemptState.FAILED, error_kind=ErrorKind.MISSING_OUTPUT, retriable=False,
                                             error=f"the notebook declares writes:{missing[0]} but did not write it. "
                                                   f"Fix: write that file, or correct the writes: tag"
                                                   + plan.path_safe_note(task, p.parameters))
        await self.db(self.store.finish_attempt, attempt_id, result.status, error_kind=result.error_kind, error=result.error,
                      error_cell=result.error_cell, ename=result.ename, evalue=result.evalue, log=result.log,
                      reads=[r for r in reads if r[1] != "missing"], writes=writes,
                      fingerprint=fingerprint if result.status == AttemptState.SUCCEEDED else None,
                      placement=placement(result), ended_at=result.ended_at, error_execution_count=result.error_execution_count)
        await self.observers.attempt_finished(self._context(), name, number, result, reads, writes)
        return result, artifact, duration(started, result.ended_at) or 0.0  # rounded as the attempt record's duration is

    async def _run_attempt(self, p: RunPlan, name: str, number: int, key: str, artifact: str, grant: Grant | None,
                           slots: asyncio.Semaphore, pool: asyncio.Semaphore | None,
                           reads: list[tuple[str, str, int]]) -> tuple[AttemptResult, int, float]:
        """Take a slot (and the task's pool), record the attempt as running, and have the executor run it."""
        task = self.pipeline.tasks[name]
        async with slots:
            if pool:
                await pool.acquire()
            try:
                started = time.time()
                attempt_id = await self.db(self.store.start_attempt, p.run_id, name, number, key, artifact, started_at=started)
                self.on_event("task", {"run_id": p.run_id, "task": name, "status": TaskState.RUNNING, "attempt": number,
                                       "started_at": started})
                await self.observers.attempt_started(self._context(), name, number, reads)
                launch = self._launch(p.run_id, name)
                spec = AttemptSpec(run_id=p.run_id, task=name, number=number, source=task.path, output=artifact,
                                   cwd=launch.cwd, kernel=launch.kernel, parameters={**p.parameters, **task.injected},
                                   timeout=task.policy.timeout, cell_timeout=task.policy.cell_timeout,
                                   check_cells=task.check_cells, env=dict(launch.env), cpus=task.policy.cpus,
                                   cores=grant.cores if grant else (), memory=task.policy.memory, gpus=task.policy.gpus,
                                   gpu_ids=grant.gpus if grant else (), named=task.policy.resources, root=self.config.root,
                                   writes=tuple(plan.resolve(w, p.parameters, task, self.config.root) for w in task.writes),
                                   notebook_copies=task.notebook_copies, output_dirs=task.output_dirs,
                                   kernel_start=launch.start, preload=launch.preload)
                try:
                    result = await self.executor.submit(spec, on_cell=self._progress(p.run_id, name))
                except asyncio.CancelledError:
                    await self.db(self.store.finish_attempt, attempt_id, AttemptState.CANCELLED, error_kind=ErrorKind.CANCELLED,
                                  error="the run was interrupted")
                    now = time.time()
                    await self.observers.attempt_finished(self._context(), name, number, AttemptResult(
                        status=AttemptState.CANCELLED, started_at=now, ended_at=now, error_kind=ErrorKind.CANCELLED,
                        error="the run was interrupted"), reads, [])
                    raise
                except Exception as e:  # noqa: BLE001 - the executor itself failed: record it on the attempt
                    log.exception("the executor failed on %s of run %s", name, p.run_id)
                    now = time.time()
                    result = AttemptResult(status=AttemptState.FAILED, started_at=now, ended_at=now, error_kind=ErrorKind.INTERNAL,
                                           error=f"the executor failed: {type(e).__name__}: {e}", retriable=True)
            finally:
                self._progress_due.discard((p.run_id, name))
                if pool:
                    pool.release()
        return result, attempt_id, started

    def _context(self) -> RunContext:
        assert self.run is not None, "the run context is set when execute starts"
        return self.run

    def _progress(self, run_id: str, task: str) -> Callable[[int, int, float], None]:
        """The executor's cell-start callback: the event sink hears each cell at once; the store gets the current one
        at most every PROGRESS_SECONDS (a notebook of many short cells must not cost a write per cell)."""
        loop = asyncio.get_running_loop()
        key = (run_id, task)

        def write() -> None:
            if key in self._progress_due:
                self._progress_due.discard(key)
                data = self._latest_progress.get(key)
                if data is not None:
                    fut = asyncio.ensure_future(self.db(self.store.set_progress, run_id, task, data))
                    self._background.add(fut)
                    fut.add_done_callback(self._background.discard)

        def on_cell(cell: int, cells: int, since: float) -> None:
            data = {"cell": cell, "cells": cells, "since": since}
            self._latest_progress[key] = data
            self.on_event("task_progress", {"run_id": run_id, "task": task, **data})
            if key not in self._progress_due:
                self._progress_due.add(key)
                loop.call_later(PROGRESS_SECONDS, write)
        return on_cell


def placement(result: AttemptResult) -> dict[str, Any]:
    """Where an attempt ran and what it used, as the store records it."""
    return {"host": result.host or None, "worker": result.worker, "pid": result.pid or None, "peak_rss": result.peak_rss,
            "cpu_seconds": result.cpu_seconds, "resources": result.resources or None, "kernel_start": result.kernel_start,
            "kernel_start_ms": result.kernel_start_ms}
