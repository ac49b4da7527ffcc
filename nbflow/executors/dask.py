"""Run attempts on a dask.distributed cluster: an existing scheduler, or a local cluster of worker processes.

The runner keeps the engine (planning, caching, retries, the store); each attempt is one Dask task that runs the
notebook in a kernel on the worker's host, in the notebook's folder, so the project must be on a filesystem every
worker mounts at the same path (checked when the run starts). Inside each worker process nbflow keeps one event loop
thread with a KernelPool, as the local executor does in the runner: the runner asks a chosen worker to start the
kernels of the tasks that will be ready next, and sends each such task there.

nbflow owns retries: every Dask task is submitted with `retries=0`, and an attempt whose worker died is reported
`worker_lost` (when Dask re-runs the task elsewhere, the second run sees the first one's claim file and stops at once)
for the engine to retry like any failure. Its kernel, a child of the dead worker process, exits within a second
(ipykernel's parent poller). Cancelling stops the attempts' kernels on the workers.

Everything that runs on a worker is a module-level function here, so nbflow must be installed on the workers.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import os
import secrets
import shutil
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ExecutorError, ResourceError
from ..liveness import HOST
from ..resources import Request
from ..states import AttemptState, ErrorKind
from .base import AttemptResult, AttemptSpec, CellProgress, KernelLaunch

if TYPE_CHECKING:
    from distributed import Client

    from ..model import DaskSettings, Pipeline
    from .kernels import KernelPool

log = logging.getLogger("nbflow.dask")
AHEAD = 2  # kernels a worker starts beyond its threads, for the tasks that will be ready next
REMOTE_CALL_S = 10.0  # how long a call to every worker (probe, cancel, forget) may take
WATCH_EVERY = 0.5  # seconds between a worker's checks that the runner still wants its attempt


def claims_dir(root: str, run_id: str) -> str:
    return os.path.join(root, ".nbflow", "dask", run_id)


def _claim_path(spec: AttemptSpec) -> str:
    return os.path.join(claims_dir(spec.root, spec.run_id), f"{urllib.parse.quote(spec.task, safe='')}.{spec.number}.claim")


def _attempt_key(spec: AttemptSpec) -> str:
    return f"nbflow-{spec.run_id}-{spec.task}-{spec.number}"


# ---------------------------------------------------------------------------------------------------------------
# the runner's side


class DaskExecutor:
    """Submits attempts to a Dask cluster from the runner's event loop (an asynchronous Client)."""

    def __init__(self, client: Client, cluster: Any, root: str, workers: Mapping[str, Mapping[str, Any]]) -> None:
        self.client, self.cluster, self.root = client, cluster, root
        self.threads = {addr: max(1, int(info.get("nthreads", 1))) for addr, info in workers.items()}
        self._placed: dict[KernelLaunch, str] = {}  # launches whose kernel a worker starts ahead -> that worker
        self._load = dict.fromkeys(self.threads, 0)  # kernels started ahead or attempts sent, per worker
        self._calls: set[asyncio.Future[Any]] = set()
        self._runs: set[str] = set()

    @property
    def total_threads(self) -> int:
        return sum(self.threads.values()) or 1

    @classmethod
    async def start(cls, settings: DaskSettings, root: str, artifacts: str, pipeline: Pipeline, selected: Iterable[str]) -> DaskExecutor:
        """Connect (or start a local cluster), wait for a worker, and check that the workers can run these tasks."""
        try:
            import distributed
        except ImportError:
            raise ExecutorError('executor "dask" needs dask.distributed. Fix: pip install "nbflow[dask]"') from None
        cluster: Any = None
        client: Any
        where = settings.address or f"a local cluster of {settings.local_workers or 2} workers"
        try:
            if settings.address:
                client = await distributed.Client(  # type: ignore[no-untyped-call]
                    settings.address, asynchronous=True, timeout=max(5.0, settings.wait_for_workers), set_as_default=False)
            else:
                cluster = await distributed.LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=settings.local_workers or 2, threads_per_worker=settings.threads, processes=True, asynchronous=True,
                    dashboard_address=None)
                client = await distributed.Client(cluster, asynchronous=True, set_as_default=False)  # type: ignore[no-untyped-call]
        except (OSError, asyncio.TimeoutError, TimeoutError) as e:
            if cluster is not None:
                await cluster.close()
            raise ExecutorError(f"cannot reach the Dask scheduler at {where} ({type(e).__name__}: {e}). Fix: start it "
                                f"(`dask scheduler`), or correct [dask] address in nbflow.toml or --dask-address") from None
        executor = None
        try:
            try:
                await client.wait_for_workers(1, timeout=settings.wait_for_workers)
            except (asyncio.TimeoutError, TimeoutError):
                raise ExecutorError(f"no worker joined the Dask scheduler at {where} within {settings.wait_for_workers:g} s. Fix: "
                                    f"start workers (`dask worker {settings.address or 'ADDRESS'}`), or raise [dask] "
                                    f"wait_for_workers") from None
            identity = await client.scheduler.identity(n_workers=-1)
            workers = identity.get("workers", {})
            executor = cls(client, cluster, root, workers)
            await executor._check(workers, artifacts, pipeline, list(selected))
            return executor
        except BaseException:
            await client.close()
            if cluster is not None:
                await cluster.close()
            raise

    async def _check(self, workers: Mapping[str, Mapping[str, Any]], artifacts: str, pipeline: Pipeline, selected: list[str]) -> None:
        """The shared-filesystem probe (each worker reads back files the runner just wrote in the project and the artifacts
        folder), nbflow and the tasks' kernels installed on every worker, and each task's resources held by some worker."""
        token = secrets.token_hex(8)
        probes = []
        for folder in dict.fromkeys((os.path.join(self.root, ".nbflow"), artifacts)):
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f".nbflow-probe-{token}")
            with open(path, "w", encoding="utf-8") as f:
                f.write(token)
            probes.append(path)
        try:
            answers = await asyncio.wait_for(self.client.run(check_worker, probes, token, on_error="return"), REMOTE_CALL_S)
        finally:
            for path in probes:
                try:
                    os.remove(path)
                except OSError:
                    pass
        kernels_needed = {pipeline.tasks[n].kernel: pipeline.tasks[n].relpath for n in selected}
        for addr, answer in sorted(answers.items()):
            if isinstance(answer, BaseException):
                fix = ("install the same nbflow on every worker (pip install nbflow[dask])" if isinstance(answer, ImportError)
                       else "check that worker's log")
                raise ExecutorError(f"the Dask worker {addr} cannot run nbflow's check ({type(answer).__name__}: {answer}). Fix: {fix}")
            for problem in answer["problems"]:
                raise ExecutorError(f"the Dask worker {addr} on host {answer['host']} {problem}. Fix: put the project (and the "
                                    f"artifacts folder) on a filesystem every worker mounts at the same path")
            for kernel, notebook in kernels_needed.items():
                if kernel not in answer["kernels"]:
                    raise ExecutorError(f"the Dask worker {addr} on host {answer['host']} has no kernel '{kernel}' (needed by "
                                        f"{notebook}; it has: {', '.join(answer['kernels']) or 'none'}). Fix: install it in the "
                                        f"workers' environment (python -m ipykernel install --name {kernel})")
        offered = {addr: dict(info.get("resources") or {}) for addr, info in workers.items()}
        for name in selected:
            task = pipeline.tasks[name]
            asked = task.policy.request.dask()
            if asked and not any(all(have.get(k, 0) >= v for k, v in asked.items()) for have in offered.values()):
                shown = "; ".join(f"{a}: {', '.join(f'{k}={v:g}' for k, v in r.items()) or 'none'}" for a, r in sorted(offered.items()))
                wanted = ",".join(f"{k}={v:g}" for k, v in asked.items())
                raise ResourceError(name, task.relpath, f"asks for {task.policy.request.describe()} (Dask resources {wanted}), "
                                                        f"which no worker offers (workers: {shown}). Fix: start a worker with "
                                                        f"`dask worker ... --resources \"{wanted}\"`, or lower the request")

    # the Executor interface

    def want(self, launch: KernelLaunch) -> None:
        """Ask the least loaded worker to start this kernel; the attempt will be sent there."""
        if launch in self._placed or not self._load:
            return
        worker = min(self._load, key=lambda a: (self._load[a] / self.threads[a], a))
        self._placed[launch] = worker
        self._load[worker] += 1
        self._call(self.client.run(want_on_worker, launch, workers=[worker], on_error="ignore"))

    def unwant(self, launch: KernelLaunch) -> None:
        worker = self._placed.pop(launch, None)
        if worker is not None:
            self._load[worker] -= 1
            self._call(self.client.run(unwant_on_worker, launch, workers=[worker], on_error="ignore"))

    async def submit(self, spec: AttemptSpec, on_cell: CellProgress | None = None) -> AttemptResult:
        """`on_cell` is not called: a worker's cell progress does not travel back while the attempt runs."""
        from distributed.scheduler import KilledWorker

        self._runs.add(spec.run_id)
        request = Request(spec.cpus, spec.memory, spec.gpus, spec.named)
        if request.dask():  # Dask places it by its resources: a worker restriction would override them
            self.unwant(spec.launch)
        worker = self._placed.pop(spec.launch, None)
        where: dict[str, Any] = {"workers": [worker], "allow_other_workers": True} if worker else {}
        started = time.time()
        future = self.client.submit(run_on_worker, spec, key=_attempt_key(spec), pure=False, retries=0,
                                    resources=request.dask() or None, **where)
        try:
            result: AttemptResult = await future
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(spec, future))
            raise
        except KilledWorker as e:
            return _lost(spec, started, f"the Dask worker {getattr(e.last_worker, 'address', '?')} died while it ran this attempt")
        finally:
            if worker is not None and worker in self._load:
                self._load[worker] -= 1
        if result.notebook is not None:
            await asyncio.to_thread(_write_back, spec.output, result.notebook)
            result = dataclasses.replace(result, notebook=None)
        return result

    async def close(self, cancel: bool = False) -> None:
        """Stop the kernels started ahead for these runs; with `cancel`, the attempts still running too."""
        try:
            if self._calls:
                await asyncio.wait(self._calls, timeout=REMOTE_CALL_S)
            if self._runs:
                await asyncio.wait_for(self.client.run(forget_on_worker, sorted(self._runs), cancel, on_error="ignore"), REMOTE_CALL_S)
        except Exception as e:  # noqa: BLE001 - a worker that does not answer while we leave: its kernels die with it
            log.warning("could not reach every Dask worker at the end of the run: %s", e)
        finally:
            for run_id in self._runs:
                shutil.rmtree(claims_dir(self.root, run_id), ignore_errors=True)
            await self.client.close()  # type: ignore[no-untyped-call]
            if self.cluster is not None:
                await self.cluster.close()

    async def _stop(self, spec: AttemptSpec, future: Any) -> None:
        """The attempt was cancelled: release its Dask task and stop its kernel, wherever it runs."""
        try:
            await future.cancel()
            await asyncio.wait_for(self.client.run(cancel_on_worker, _attempt_key(spec), on_error="ignore"), REMOTE_CALL_S)
        except Exception as e:  # noqa: BLE001 - the worker also stops an attempt whose task was released (run_on_worker)
            log.warning("could not reach the Dask workers to stop %s: %s", _attempt_key(spec), e)

    def _call(self, coro: Any) -> None:
        call = asyncio.ensure_future(coro)
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)


def _write_back(path: str, notebook: bytes) -> None:
    """The executed notebook as the worker wrote it; rewritten here only when this machine sees another version."""
    try:
        with open(path, "rb") as f:
            if f.read() == notebook:
                return
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    with open(tmp, "wb") as f:
        f.write(notebook)
    os.replace(tmp, path)


def _lost(spec: AttemptSpec, started: float, why: str) -> AttemptResult:
    return AttemptResult(status=AttemptState.FAILED, started_at=started, ended_at=time.time(), error_kind=ErrorKind.WORKER_LOST,
                         error=f"{why}. Its kernel ended with it; nbflow retries the attempt if the task's retries allow", retriable=True)


# ---------------------------------------------------------------------------------------------------------------
# the worker's side: these run in a Dask worker process


class _Node:
    """nbflow in one worker process: an event loop thread holding its kernels (a KernelPool) and running attempts, and the
    CPU cores and GPU ids its attempts hold."""

    def __init__(self, nthreads: int) -> None:
        from .attempt import preload_in_background
        from .kernels import KernelPool

        self.loop = asyncio.new_event_loop()
        self.pool: KernelPool = KernelPool(nthreads + AHEAD)
        self.attempts: dict[str, asyncio.Task[AttemptResult]] = {}
        self.wanted: set[KernelLaunch] = set()  # launches the runner asked to start ahead (touched in the loop only)
        self.lock = threading.Lock()
        from ..engine.budget import detect_gpus, machine_cores

        self.cores = {c: 0 for c in machine_cores()}
        self.gpus_free = list(detect_gpus())
        threading.Thread(target=self.loop.run_forever, name="nbflow-worker-loop", daemon=True).start()
        self.preloaded = preload_in_background()

    def grant(self, spec: AttemptSpec) -> AttemptSpec:
        """Distinct cores and GPU ids of this worker for the attempt (Dask's resources already keep the counts in bounds)."""
        with self.lock:
            if spec.gpus > len(self.gpus_free):
                raise ResourceError(spec.task, spec.source, f"gpus:{spec.gpus} but worker on {HOST} has {len(self.gpus_free)} GPU "
                                    f"ids free (its GPU resource is larger than its GPUs). Fix: start it with CUDA_VISIBLE_DEVICES "
                                    f"listing its GPUs, or --resources GPU=<their number>")
            gpus = tuple(self.gpus_free[:spec.gpus])
            self.gpus_free = self.gpus_free[spec.gpus:]
            cores: tuple[int, ...] = ()
            if spec.cpus:
                cores = tuple(sorted(sorted(self.cores, key=lambda c: (self.cores[c], c))[:spec.cpus]))
                for c in cores:
                    self.cores[c] += 1
        return dataclasses.replace(spec, cores=cores, gpu_ids=gpus)

    def ungrant(self, spec: AttemptSpec) -> None:
        with self.lock:
            self.gpus_free.extend(spec.gpu_ids)
            for c in spec.cores:
                self.cores[c] -= 1

    async def run(self, spec: AttemptSpec) -> AttemptResult:
        from .attempt import execute_attempt_async

        await asyncio.wrap_future(self.preloaded)
        return await execute_attempt_async(spec, self.pool.take, self.pool.release)

    def start(self, key: str, spec: AttemptSpec) -> concurrent.futures.Future[AttemptResult]:
        async def tracked() -> AttemptResult:
            self.attempts[key] = asyncio.current_task()  # type: ignore[assignment]
            try:
                return await self.run(spec)
            finally:
                self.attempts.pop(key, None)

        return asyncio.run_coroutine_threadsafe(tracked(), self.loop)

    def cancel(self, key: str) -> bool:
        task = self.attempts.get(key)
        if task is not None:
            self.loop.call_soon_threadsafe(task.cancel)
        return task is not None


_node: _Node | None = None
_node_lock = threading.Lock()


def _node_of(worker: Any) -> _Node:
    global _node
    with _node_lock:
        if _node is None:
            _node = _Node(int(getattr(getattr(worker, "state", None), "nthreads", 1) or 1))
        return _node


def run_on_worker(spec: AttemptSpec) -> AttemptResult:
    """The Dask task: run one attempt in this worker's nbflow loop and send back the result, the output hashes and the
    executed notebook. A second run of the same attempt (Dask moved it after its worker died) reports worker_lost."""
    from distributed import get_worker

    from ..engine.plan import hash_outputs

    worker = get_worker()
    started = time.time()
    previous = _claim(spec, worker.address)
    if previous is not None:
        lost = _lost(spec, started, f"the Dask worker {previous.get('worker')} on host {previous.get('host')} was lost while it ran "
                                    f"this attempt (Dask then sent it to {worker.address})")
        return dataclasses.replace(lost, worker=previous.get("worker"), host=previous.get("host") or "", pid=previous.get("pid") or 0)
    node = _node_of(worker)
    spec = node.grant(spec)
    try:
        key = _attempt_key(spec)
        running = node.start(key, spec)
        while True:
            try:
                result = running.result(timeout=WATCH_EVERY)
                break
            except concurrent.futures.TimeoutError:
                if not _still_wanted(worker, key):  # cancelled, or its runner is gone: stop the kernel
                    node.cancel(key)
    except concurrent.futures.CancelledError:
        return AttemptResult(status=AttemptState.CANCELLED, started_at=started, ended_at=time.time(), error_kind=ErrorKind.CANCELLED,
                             error="the attempt was cancelled", worker=worker.address, host=HOST, pid=os.getpid())
    finally:
        node.ungrant(spec)
    writes: tuple[tuple[str, str, int], ...] | None = None
    missing: tuple[str, ...] = ()
    if result.status == AttemptState.SUCCEEDED:
        found, not_found = hash_outputs(spec.writes, spec.root)
        writes, missing = tuple(found), tuple(not_found)
    try:
        with open(spec.output, "rb") as f:
            notebook: bytes | None = f.read()
    except OSError:
        notebook = None
    return dataclasses.replace(result, worker=worker.address, writes=writes, missing=missing, notebook=notebook)


def _claim(spec: AttemptSpec, worker: str) -> dict[str, Any] | None:
    """Mark the attempt as started here; the earlier claim when it already started somewhere."""
    path = _claim_path(spec)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            with open(path, encoding="utf-8") as f:
                found = json.load(f)
            return found if isinstance(found, dict) else {}
        except (OSError, ValueError):
            return {}
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"worker": worker, "host": HOST, "pid": os.getpid(), "at": time.time()}, f)
    return None


def _still_wanted(worker: Any, key: str) -> bool:
    """Whether the scheduler still wants this task from this worker (it is released when cancelled or when its client is
    gone). Unknown worker internals count as wanted."""
    try:
        ts = worker.state.tasks.get(key)
    except AttributeError:
        return True
    return ts is not None and getattr(ts, "state", "executing") not in ("cancelled", "released", "forgotten")


def check_worker(probes: list[str], token: str) -> dict[str, Any]:
    """Run on every worker when a run starts: can it read the runner's probe files, and which kernels does it have."""
    from .kernelspecs import installed_kernels

    problems = []
    for path in probes:
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() != token:
                    problems.append(f"reads another file at {path} than the runner wrote")
        except OSError as e:
            problems.append(f"cannot read {path}, which the runner just wrote ({e.strerror or e})")
    return {"host": HOST, "pid": os.getpid(), "problems": problems, "kernels": installed_kernels()}


def want_on_worker(launch: KernelLaunch, dask_worker: Any = None) -> None:
    """Start this kernel ahead in this worker (runs in the worker's event loop: only hands the request over)."""
    node = _node_of(dask_worker)

    def want() -> None:
        node.wanted.add(launch)
        node.pool.want(launch)

    node.loop.call_soon_threadsafe(want)


def unwant_on_worker(launch: KernelLaunch, dask_worker: Any = None) -> None:
    node = _node_of(dask_worker)

    def unwant() -> None:
        node.wanted.discard(launch)
        node.pool.unwant(launch)

    node.loop.call_soon_threadsafe(unwant)


def cancel_on_worker(key: str) -> bool:
    """Stop the attempt `key` if it runs in this worker (its kernel is stopped)."""
    return _node.cancel(key) if _node is not None else False


def forget_on_worker(run_ids: list[str], cancel: bool = False) -> int:
    """The runs ended: stop the kernels started ahead for them (and, with `cancel`, their running attempts)."""
    node = _node
    if node is None:
        return 0
    runs = set(run_ids)

    def forget() -> None:
        for launch in [launch for launch in node.wanted if dict(launch.env).get("NBFLOW_RUN_ID") in runs]:
            node.wanted.discard(launch)
            node.pool.unwant(launch)

    node.loop.call_soon_threadsafe(forget)
    if cancel:
        for key in list(node.attempts):
            if any(key.startswith(f"nbflow-{r}-") for r in runs):
                node.cancel(key)
    return len(runs)
