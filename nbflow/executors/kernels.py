"""Fresh kernels for attempts, started before they are needed. Imported only where kernels start.

Each kernel serves exactly one attempt and is then shut down: state never leaks from one task to another.
What is saved is the wait: a task's kernel starts while its upstream tasks still run, so when the task becomes
ready its notebook starts executing at once. A kernel is forked from a template process where it can be (see
forking.py), else launched ("spawn") as jupyter_client always does.
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from . import forking
from .base import KernelLaunch
from .forkserver import ForkUnavailable, socket_dir

STARTUP_TIMEOUT = 60.0
FORK_TIMEOUT = 20.0  # a forked kernel not ready by then is killed, and the kernel launched instead
SHUTDOWN_WAIT = 1.0  # graceful shutdown gets this long before the kernel is killed (jupyter_client waits 5 s)
CLOSE_WAIT = 0.3  # at the end of a run, shutdowns still in flight get this long, then their kernels are killed


class IPCKernelManager(AsyncKernelManager):
    """A local kernel over IPC sockets: concurrent starts cannot race for TCP ports (papermill #511) and no
    port opens on the machine. Each kernel gets its own socket path in a private temp folder; jupyter_client's
    default would put `kernel-ipc-N` files in the notebook's folder, where two kernels would collide."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(socket_dir(), uuid.uuid4().hex[:12]))
        super().__init__(**kwargs)
        self.shutdown_wait_time = SHUTDOWN_WAIT
        self.output_path = f"{self.ip}.log"

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        """Send the kernel process's own stdout/stderr (not the notebook's) to a file that becomes part of the
        attempt's log, instead of the runner's terminal."""
        with open(self.output_path, "ab") as out:
            kw.setdefault("stdout", out)
            kw.setdefault("stderr", out)
            await super()._async_launch_kernel(kernel_cmd, **kw)

    _launch_kernel = _async_launch_kernel


log = logging.getLogger("nbflow.kernels")


@dataclass(eq=False)
class Kernel:
    """A started kernel with a connected client, ready for one notebook."""

    launch: KernelLaunch
    km: IPCKernelManager
    kc: AsyncKernelClient
    how: str = "spawn"  # "fork" (from the template) or "spawn" (launched)
    start_ms: float = 0.0  # from the request to ready
    info: dict[str, Any] = field(default_factory=dict)  # its kernel_info reply (language_info, ...)

    @property
    def pid(self) -> int | None:
        return getattr(self.km.provisioner, "pid", None)

    def kill(self) -> None:
        """SIGKILL the kernel now (a task's time is up); nbclient then reports a dead kernel."""
        process = getattr(self.km.provisioner, "process", None)
        if process is not None:
            try:
                process.kill()
            except OSError:
                pass

    def output(self) -> str:
        """What the kernel process itself printed (start-up warnings, crashes); read once, then removed."""
        try:
            with open(self.km.output_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            os.remove(self.km.output_path)
        except OSError:
            return ""
        return text

    async def stop(self, now: bool = False) -> None:
        """Close the client and shut the kernel down (gracefully unless `now`; killed after SHUTDOWN_WAIT)."""
        stop_channels(self.kc)
        try:
            await self.km.shutdown_kernel(now=now)
        finally:
            try:
                os.remove(self.km.output_path)
            except OSError:
                pass


def zmq_context() -> zmq.asyncio.Context:
    """One ZeroMQ context for every kernel manager and client of the process: jupyter_client would make two per kernel,
    each with an I/O thread of its own, and terminate them at every shutdown."""
    global _context
    with _context_lock:
        if _context is None:
            _context = zmq.asyncio.Context()
        return _context


_context: zmq.asyncio.Context | None = None
_context_lock = threading.Lock()


class KernelSpecs(KernelSpecManager):
    """Kernel specs read once: a pool's kernels all start from the same few specs, and jupyter_client would look each
    one up on disk again (and build a spec manager) for every kernel."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._found: dict[str, KernelSpec] = {}

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name not in self._found:
            self._found[kernel_name] = super().get_kernel_spec(kernel_name)
        return self._found[kernel_name]


async def start(launch: KernelLaunch, specs: KernelSpecs | None = None) -> Kernel:
    """Start a kernel exactly as the task would get it cold: its kernel spec, working directory and environment.

    Forked when the launch asks for it and the kernel spec allows it; launched when not, or when forking fails.
    `specs`: kernel specs already read (a pool's)."""
    began = time.perf_counter()
    if launch.start == "fork":
        try:
            kernel = await _start(launch, True, specs)
        except ForkUnavailable as e:
            log.debug("kernel %s for %s is launched: %s", launch.kernel, launch.cwd, e)
        except Exception as e:  # noqa: BLE001 - any failure of the fork path: the task still gets its kernel
            log.warning("could not fork a kernel (%s: %s); launching it instead", type(e).__name__, e)
        else:
            kernel.start_ms = (time.perf_counter() - began) * 1000
            return kernel
    kernel = await _start(launch, False, specs)
    kernel.start_ms = (time.perf_counter() - began) * 1000
    return kernel


async def _start(launch: KernelLaunch, fork: bool, specs: KernelSpecs | None) -> Kernel:
    km = IPCKernelManager(kernel_name=launch.kernel, context=zmq_context(), **({"kernel_spec_manager": specs} if specs else {}))
    if fork:
        reason = forking.unavailable_reason(km.kernel_spec) if km.kernel_spec else "no kernel spec"
        if reason:
            raise ForkUnavailable(reason)
        km.kernel_id = str(uuid.uuid4())
        km.provisioner = forking.ForkProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km,
                                                 preload=list(launch.preload))
    try:
        await km.start_kernel(cwd=launch.cwd, env={**os.environ, **dict(launch.env)})
        km.session.unpack = with_header_dates(km.session.unpack)
        # the kernel manager's own session: it only ever sends (shutdown requests), so there is no digest history
        # to keep apart, and jupyter_client's client() would build a copy of it for every kernel
        kc = km.client_factory(parent=km, context=km.context, session=km.session, connection_file=km.connection_file,
                               **{k: v for k, v in km.get_connection_info().items() if k not in ("key", "signature_scheme")})
        # What nbclient uses: shell and IOPub. No stdin (notebooks cannot ask for input), no heartbeat thread
        # (liveness comes from the process), no control channel (the kernel manager has its own for shutdown).
        kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        try:
            info = await wait_until_ready(km, kc, FORK_TIMEOUT if fork else STARTUP_TIMEOUT)
        except BaseException:
            stop_channels(kc)
            raise
    except BaseException as e:  # cancelled or failed half way: never leave the process behind
        if km.has_kernel:
            await asyncio.shield(km.shutdown_kernel(now=True))
        else:
            await asyncio.shield(km.cleanup_resources())
        output = Kernel(launch, km, None).output().strip()  # type: ignore[arg-type]
        if output and isinstance(e, Exception):
            raise RuntimeError(f"{e}; the kernel printed:\n{output[-2000:]}") from e
        raise
    return Kernel(launch, km, kc, how="fork" if fork else "spawn", info=info)


def with_header_dates(unpack: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Unpack messages with their header's date already a datetime, parsed by the standard library: jupyter_client
    parses every date in every header with dateutil (about a fifth of the CPU of receiving a message, measured). A date
    fromisoformat cannot read, or without a time zone, is left to jupyter_client, as before."""

    def unpack_with_dates(data: Any) -> Any:
        found = unpack(data)
        if isinstance(found, dict) and "msg_id" in found and "msg_type" in found and isinstance(found.get("date"), str):
            try:
                date = datetime.datetime.fromisoformat(found["date"].replace("Z", "+00:00"))
            except ValueError:
                return found
            if date.tzinfo is not None:
                found["date"] = date
        return found

    return unpack_with_dates


def stop_channels(kc: AsyncKernelClient) -> None:
    """Stop the channels that were started (KernelClient.stop_channels would first create every channel not started)."""
    for name in ("_shell_channel", "_iopub_channel", "_stdin_channel", "_hb_channel", "_control_channel"):
        channel = getattr(kc, name, None)
        if channel is not None and channel.is_alive():
            channel.stop()


async def wait_until_ready(km: AsyncKernelManager, kc: AsyncKernelClient, timeout: float) -> dict[str, Any]:
    """Ready: the shell answered kernel_info and an IOPub message arrived (so the first cell's output cannot be lost
    to the IOPub subscription still joining). jupyter_client's wait_for_ready checks the same, then waits 0.2 s for
    IOPub to fall silent; the messages it drains belong to no cell, and nbclient ignores them, so that wait is not
    paid here. Returns the kernel_info reply's content."""
    deadline = time.monotonic() + timeout
    while True:
        msg_id = kc.kernel_info()
        try:
            while True:
                reply = await kc.get_shell_msg(timeout=1)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            await kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            if not await km.is_alive():
                raise RuntimeError("the kernel died before it was ready") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel was not ready within {timeout:g} s") from None
            continue
        kc._handle_kernel_info_reply(reply)
        return dict(reply["content"])


class KernelPool:
    """Kernels for the tasks that will run next, started ahead of need, at most `capacity` alive at once.

    `want` says a launch will probably be needed soon (started when there is room, in the order asked);
    `take` hands over the kernel for a launch, pre-started or started now; `release` shuts it down in the
    background, off the critical path; `unwant` drops a launch that will not be needed after all.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._wanted: dict[KernelLaunch, None] = {}  # an ordered set: started in the order asked
        self._ahead: dict[KernelLaunch, asyncio.Task[Kernel]] = {}  # started for a launch, not yet taken
        self._busy = 0
        self._stopping: set[asyncio.Task[None]] = set()
        self._released: set[Kernel] = set()  # shutting down after their attempt
        self.specs = KernelSpecs()

    def want(self, launch: KernelLaunch) -> None:
        if launch not in self._ahead and launch not in self._wanted:
            self._wanted[launch] = None
            self._fill()

    def unwant(self, launch: KernelLaunch) -> None:
        self._wanted.pop(launch, None)
        task = self._ahead.pop(launch, None)
        if task is not None:
            self._discard(task)
            self._fill()

    async def take(self, launch: KernelLaunch) -> Kernel:
        self._wanted.pop(launch, None)
        task = self._ahead.pop(launch, None) or asyncio.create_task(start(launch, self.specs))
        self._busy += 1
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._discard(task)
            self._busy -= 1
            raise
        except BaseException:
            self._busy -= 1
            self._fill()
            raise

    def release(self, kernel: Kernel) -> None:
        """The attempt is over: shut its kernel down in the background and make room for the next one."""
        self._busy -= 1
        self._released.add(kernel)

        async def stop() -> None:
            try:
                await kernel.stop()
            finally:
                self._released.discard(kernel)

        self._track(stop())
        self._fill()

    async def close(self, cancel: bool = False) -> None:
        """Stop kernels nobody took; give shutdowns in flight CLOSE_WAIT (none with `cancel`), then kill the rest.

        Their notebooks are written by then: a kernel still shutting down only delays the runner's exit."""
        self._wanted.clear()
        for task in self._ahead.values():
            self._discard(task)
        self._ahead.clear()
        if self._stopping and not cancel:  # graceful shutdowns in flight get a moment to finish
            await asyncio.wait(self._stopping, timeout=CLOSE_WAIT)
        for kernel in list(self._released):
            kernel.kill()
        if self._stopping:
            await asyncio.wait(self._stopping, timeout=SHUTDOWN_WAIT)

    def _fill(self) -> None:
        while self._wanted and self._busy + len(self._ahead) < self.capacity:
            launch = next(iter(self._wanted))
            del self._wanted[launch]
            self._ahead[launch] = asyncio.create_task(start(launch, self.specs))

    def _discard(self, task: asyncio.Task[Kernel]) -> None:
        async def stop_when_started() -> None:
            try:
                kernel = await task
            except BaseException:  # noqa: BLE001 - a kernel that never started needs no stopping
                return
            await kernel.stop(now=True)

        if not task.done():
            task.cancel()
        self._track(stop_when_started())

    def _track(self, coro: Any) -> None:
        stopping = asyncio.create_task(coro)
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)
