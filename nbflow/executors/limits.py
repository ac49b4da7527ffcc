"""A kernel's limits and usage: pin it to its CPUs, cap its memory, and measure its peak memory and CPU time.

Everything acts on the kernel's pid after it started, so it works however the kernel was started (a fresh
process, or one forked from a template). Memory is capped by a cgroup v2 of its own where this process may
create one with the memory controller, else by an rlimit on the kernel's data segment (RLIMIT_DATA: heap and
private mappings, which Linux counts since 4.7): the notebook then gets MemoryError when an allocation would
cross the limit. Either way only the kernel (and what it starts) is limited, never the runner or the worker.
"""
from __future__ import annotations

import logging
import os
import signal
import uuid
from dataclasses import dataclass, field
from typing import Any

import psutil

log = logging.getLogger("nbflow.limits")
CGROUP_ROOT = "/sys/fs/cgroup"
SAMPLE_EVERY = 0.25  # seconds between samples of a running kernel's memory and CPU time


@dataclass
class Limits:
    """What was applied to one kernel, and how: recorded on the attempt."""

    cores: tuple[int, ...] = ()
    memory: int | None = None
    memory_by: str | None = None  # "cgroup" or "rlimit"
    cgroup: str | None = None  # the kernel's own cgroup folder, removed when it ends
    problem: str | None = None  # why the limit cannot hold (the kernel already uses more at start)

    def as_json(self, gpus: tuple[str, ...] = ()) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cores:
            out["cores"] = list(self.cores)
        if gpus:
            out["gpus"] = list(gpus)
        if self.memory:
            out.update(memory=self.memory, memory_by=self.memory_by)
        return out


def apply(pid: int, cores: tuple[int, ...], memory: int | None) -> Limits:
    """Pin the kernel's threads to `cores` and cap its memory; a limit that cannot be applied is logged, not fatal."""
    limits = Limits(cores=cores, memory=memory)
    if cores:
        pin(pid, cores)
    if memory:
        group = _cgroup_for(pid, memory)
        if group is not None:
            limits.memory_by, limits.cgroup = "cgroup", group
        else:
            limits.memory_by = "rlimit"
            try:
                used = _data_size(pid)
                if used is not None and used >= memory:
                    limits.problem = f"its kernel already uses {used >> 20} MiB of data memory when it starts"
                psutil.Process(pid).rlimit(psutil.RLIMIT_DATA, (memory, memory))
            except (psutil.Error, OSError, AttributeError) as e:  # AttributeError: no prlimit on this platform
                log.warning("cannot limit the memory of kernel %s: %s", pid, e)
                limits.memory_by = None
    return limits


def pin(pid: int, cores: tuple[int, ...]) -> None:
    """Set the CPU affinity of every thread of the process (sched_setaffinity on a pid moves only its main thread;
    threads started later inherit it)."""
    try:
        threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cores)
        except (OSError, AttributeError) as e:
            log.warning("cannot pin thread %s of kernel %s to CPUs %s: %s", tid, pid, cores, e)


def _data_size(pid: int) -> int | None:
    """VmData of the process (what RLIMIT_DATA counts), in bytes."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _cgroup_parent() -> str | None:
    """A cgroup v2 folder where this process may make children with the memory controller, if there is one."""
    try:
        with open("/proc/self/cgroup", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None or not os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return None  # not cgroup v2 (or v2 only in hybrid mode, without the memory controller)
    for folder in (os.path.join(CGROUP_ROOT, own.lstrip("/")), os.path.dirname(os.path.join(CGROUP_ROOT, own.lstrip("/")))):
        try:
            with open(os.path.join(folder, "cgroup.subtree_control"), encoding="ascii") as f:
                if "memory" in f.read().split() and os.access(folder, os.W_OK):
                    return folder
        except OSError:
            continue
    return None


def memory_mechanism() -> str:
    """How a memory: limit would be applied on this machine: "cgroup" (v2, memory controller writable) or "rlimit"."""
    return "cgroup" if _cgroup_parent() is not None else "rlimit"


def _cgroup_for(pid: int, memory: int) -> str | None:
    """Move the kernel into a new cgroup capped at `memory` (swap included); None when cgroups cannot be used."""
    parent = _cgroup_parent()
    if parent is None:
        return None
    group = os.path.join(parent, f"nbflow-kernel-{pid}-{uuid.uuid4().hex[:6]}")
    try:
        os.mkdir(group)
        _write(group, "memory.max", str(memory))
        try:
            _write(group, "memory.swap.max", "0")
        except OSError:
            pass  # no swap accounting: memory.max still holds
        _write(group, "cgroup.procs", str(pid))
    except OSError as e:
        log.info("cannot use cgroup %s for kernel %s (%s); using an rlimit", group, pid, e)
        remove_cgroup(group)
        return None
    return group


def _write(folder: str, name: str, value: str) -> None:
    with open(os.path.join(folder, name), "w", encoding="ascii") as f:
        f.write(value)


def oom_killed(group: str | None) -> bool:
    """Whether the kernel's cgroup killed a process for going over its memory.max."""
    if not group:
        return False
    try:
        with open(os.path.join(group, "memory.events"), encoding="ascii") as f:
            return any(line.split()[0] == "oom_kill" and int(line.split()[1]) > 0 for line in f if line.strip())
    except (OSError, ValueError, IndexError):
        return False


def cgroup_peak(group: str | None) -> int | None:
    """memory.peak of the kernel's cgroup (Linux 5.19+), in bytes."""
    if not group:
        return None
    try:
        with open(os.path.join(group, "memory.peak"), encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def remove_cgroup(group: str | None) -> None:
    """Remove the kernel's cgroup once it is empty, killing what is left in it."""
    if not group or not os.path.isdir(group):
        return
    try:
        with open(os.path.join(group, "cgroup.procs"), encoding="ascii") as f:
            for line in f:
                try:
                    os.kill(int(line), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        os.rmdir(group)
    except OSError as e:
        log.debug("cgroup %s not removed: %s", group, e)


@dataclass
class Meter:
    """The kernel's peak resident memory (itself and its children) and CPU seconds, sampled while it runs."""

    pid: int
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    _proc: psutil.Process | None = field(default=None, repr=False)

    def sample(self) -> None:
        """Take one sample; a kernel that is gone keeps its last numbers."""
        try:
            if self._proc is None:
                self._proc = psutil.Process(self.pid)
            proc = self._proc
            with proc.oneshot():
                rss = proc.memory_info().rss
                times = proc.cpu_times()
                hwm = _high_water_mark(self.pid)
            children = _children(proc)
        except psutil.Error:
            return
        running = 0.0  # children still running; reaped ones are in children_user/children_system
        for child in children:
            try:
                rss += child.memory_info().rss
                t = child.cpu_times()
                running += t.user + t.system
            except psutil.Error:
                continue
        own = times.user + times.system + times.children_user + times.children_system
        self.cpu_seconds = max(self.cpu_seconds, own + running)
        self.peak_rss = max(self.peak_rss, rss, hwm or 0)


def _children(proc: psutil.Process) -> list[psutil.Process]:
    """The process's descendants. Linux lists each thread's children in /proc (cheap); psutil's children() scans every
    process of the machine (~6 ms here), too much four times a second per running notebook."""
    found: list[psutil.Process] = []
    todo = [proc.pid]
    try:
        while todo:
            pid = todo.pop()
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                    for child in f.read().split():
                        todo.append(int(child))
                        found.append(psutil.Process(int(child)))
    except FileNotFoundError:  # a process or thread that just ended: what was found stands
        return found
    except (OSError, ValueError):  # no /proc/PID/task/TID/children (not Linux, or an old kernel)
        return list(proc.children(recursive=True))
    except psutil.NoSuchProcess:
        return found
    return found


def _high_water_mark(pid: int) -> int | None:
    """VmHWM: the process's own peak resident memory as the kernel counted it (exact, between samples too)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None
