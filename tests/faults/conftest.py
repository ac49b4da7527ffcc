"""Helpers for the fault-injection suite: real runner processes killed with SIGKILL, real kernels, real SQLite."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from ..conftest import REPO, wait_for

KILLER = Path(__file__).with_name("killer.py")


def runner(root: Path, point: str | None, *args: str, n: int = 1) -> subprocess.Popen[str]:
    """`nbflow ARGS` in `root` as its own process, killed at `point` (None: not killed)."""
    cmd = [sys.executable, str(KILLER), point, str(n), "--", *args] if point else [sys.executable, "-m", "nbflow", *args]
    return subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})


def processes_in(root: Path) -> list[psutil.Process]:
    """Processes (kernels, runners) whose working directory is inside `root`, other than this one."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and Path(proc.cwd()).is_relative_to(root) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            continue
    return found


def no_process_left(root: Path, timeout: float = 20) -> None:
    """Every kernel of the killed runner exits by itself (it watches its parent)."""
    wait_for(lambda: not processes_in(root), timeout, f"the kernels under {root} to exit: {processes_in(root)}")
