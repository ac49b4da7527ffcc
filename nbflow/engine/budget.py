"""This machine's CPUs, GPU ids and named resources, handed to local tasks as they start: a task waits until all it
asks for is free, in the order tasks asked, and gets distinct CPU cores and GPU ids to itself."""
from __future__ import annotations

import asyncio
import collections
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..resources import Request, format_size


@dataclass(frozen=True)
class Grant:
    """What a running task holds: the cores its kernel is pinned to and the GPU ids it sees."""

    cores: tuple[int, ...] = ()
    gpus: tuple[str, ...] = ()


def machine_cores() -> list[int]:
    """The CPU cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def detect_gpus() -> tuple[str, ...]:
    """GPU ids: this process's CUDA_VISIBLE_DEVICES when set, else those `nvidia-smi -L` lists, else none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return tuple(g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1")
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.split(":")[0].split()[1] for line in listed.splitlines() if line.startswith("GPU ") and ":" in line)


def total_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


class Budget:
    """Hands out CPUs (as distinct cores while there are enough), GPU ids and named resources; strictly first come,
    first served, so a large request is never starved by small ones."""

    def __init__(self, cpus: int, cores: Sequence[int], gpus: Sequence[str], named: Mapping[str, float]) -> None:
        self.cpus = cpus
        self.cores = list(cores) or [0]
        self.gpus = list(gpus)
        self.named = dict(named)
        self._cpus_free = cpus
        self._core_use = dict.fromkeys(self.cores, 0)
        self._gpus_free = list(gpus)
        self._named_free = dict(named)
        self._waiting: collections.deque[tuple[Request, asyncio.Future[Grant]]] = collections.deque()

    def unmet(self, request: Request, memory: int | None = None) -> str | None:
        """Why `request` can never be met here (with the fix), or None."""
        if request.cpus > self.cpus:
            return (f"cpus:{request.cpus} asks for more than the {self.cpus} CPUs local runs may use. Fix: lower cpus: for this task, "
                    f"or raise `cpus = ...` in nbflow.toml (default: this machine's CPU count)")
        if request.gpus > len(self.gpus):
            have = f"{len(self.gpus)} ({', '.join(self.gpus)})" if self.gpus else "none (no `gpus = [...]` in nbflow.toml, no nvidia-smi)"
            return (f"gpus:{request.gpus} asks for more GPUs than this machine has: {have}. Fix: lower gpus: for this task, or list "
                    f"the GPU ids in nbflow.toml (gpus = [0, 1]), or run it on a Dask worker with GPUs")
        if memory is not None and request.memory and request.memory > memory:
            return (f"memory:{format_size(request.memory)} is more than this machine's {format_size(memory)}. "
                    f"Fix: lower memory: for this task, or run it on a Dask worker with more memory")
        for name, amount in request.named:
            if name not in self.named:
                return (f"resources:{name}={amount:g} names a resource this machine does not declare. Fix: add "
                        f"{name} = N under [resources] in nbflow.toml, or correct the name")
            if amount > self.named[name]:
                return (f"resources:{name}={amount:g} asks for more than the {self.named[name]:g} declared under [resources]. "
                        f"Fix: lower it, or raise {name} under [resources] in nbflow.toml")
        return None

    async def acquire(self, request: Request) -> Grant:
        """Wait until the request fits (behind any earlier waiter), then take it."""
        if not (request.cpus or request.gpus or request.named):
            return Grant()
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        entry = (request, future)
        self._waiting.append(entry)
        self._serve()
        try:
            return await future
        except asyncio.CancelledError:
            if entry in self._waiting:
                self._waiting.remove(entry)
                self._serve()
            elif future.done() and not future.cancelled():
                self.release(request, future.result())
            raise

    def release(self, request: Request, grant: Grant) -> None:
        self._cpus_free += request.cpus
        for core in grant.cores:
            self._core_use[core] -= 1
        self._gpus_free.extend(grant.gpus)
        for name, amount in request.named:
            self._named_free[name] += amount
        self._serve()

    def _fits(self, request: Request) -> bool:
        return (request.cpus <= self._cpus_free and request.gpus <= len(self._gpus_free)
                and all(amount <= self._named_free.get(name, 0) + 1e-9 for name, amount in request.named))

    def _serve(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            request, future = self._waiting.popleft()
            if future.done():
                continue
            future.set_result(self._take(request))

    def _take(self, request: Request) -> Grant:
        self._cpus_free -= request.cpus
        cores = sorted(sorted(self.cores, key=lambda c: (self._core_use[c], c))[:min(request.cpus, len(self.cores))])
        for core in cores:
            self._core_use[core] += 1
        gpus = tuple(sorted(self._gpus_free[:request.gpus], key=_gpu_order))
        self._gpus_free = [g for g in self._gpus_free if g not in gpus]
        for name, amount in request.named:
            self._named_free[name] -= amount
        return Grant(tuple(cores), gpus)


def _gpu_order(gpu: str) -> tuple[int, str]:
    return (int(gpu), "") if gpu.isdigit() else (1 << 30, gpu)


def local_budget(cpus: int, gpus: Sequence[str] | None, named: Mapping[str, float]) -> Budget:
    """The budget of a local run: `cpus` (0: the CPU count), `gpus` (None: detected), the [resources] table."""
    cores = machine_cores()
    return Budget(cpus or len(cores), cores, detect_gpus() if gpus is None else gpus, named)
