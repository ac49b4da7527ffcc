"""Run `nbflow ...` in this process and kill it with SIGKILL at a chosen point: how the fault tests crash a real
runner at a precise moment without a test hook inside the package (this file patches it from outside).

    python tests/faults/killer.py POINT [N] -- run|resume ARGS...

POINT is one of KILL_POINTS; N (default 1) is the how-many-th time the point is reached that kills."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Counter:
    def __init__(self, n: int) -> None:
        self.left = n

    def hit(self) -> bool:
        self.left -= 1
        return self.left == 0


def kernel_starting(count: Counter) -> None:
    """After a kernel process was launched, before it answered: kill."""
    from jupyter_client.manager import AsyncKernelManager

    original = AsyncKernelManager.start_kernel

    async def start_kernel(self: Any, **kw: Any) -> None:
        await original(self, **kw)
        if count.hit():
            die()

    AsyncKernelManager.start_kernel = start_kernel  # type: ignore[method-assign]


def mid_cell(count: Counter) -> None:
    """While a cell runs: the notebook creates `mid-cell.flag` in its folder, then sleeps; a thread here kills."""
    def watch() -> None:
        while not os.path.exists("mid-cell.flag"):
            time.sleep(0.02)
        die()

    threading.Thread(target=watch, daemon=True).start()


def writing_notebook(count: Counter) -> None:
    """Half way through writing an executed notebook to disk: kill (the file is left truncated)."""
    from nbformat.v4.nbjson import writes

    from nbflow.executors import attempt

    original = attempt._write  # where nbflow writes executed notebooks (papermill's writer is not used)

    def write(nb: Any, path: str) -> None:
        if path.endswith(".ipynb") and count.hit():
            buf = writes(nb)
            with open(path, "w", encoding="utf-8") as f:
                f.write(buf[: len(buf) // 2])
                f.flush()
            die()
        original(nb, path)

    attempt._write = write


def store_transaction(count: Counter) -> None:
    """Inside the transaction that records an attempt's end (after its UPDATE, before its COMMIT): kill."""
    from nbflow.store.store import Store

    original: Callable[..., None] = Store._link

    def link(conn: Any, attempt_id: int, direction: str, version_id: int) -> None:
        original(conn, attempt_id, direction, version_id)
        if count.hit():
            die()

    Store._link = staticmethod(link)  # type: ignore[method-assign,assignment]


def hashing_outputs(count: Counter) -> None:
    """While the outputs of a finished attempt are hashed: kill."""
    from nbflow.engine import plan

    original = plan.hash_writes

    def hash_writes(*args: Any, **kwargs: Any) -> Any:
        if count.hit():
            die()
        return original(*args, **kwargs)

    plan.hash_writes = hash_writes


KILL_POINTS = {f.__name__: f for f in (kernel_starting, mid_cell, writing_notebook, store_transaction, hashing_outputs)}


def main() -> None:
    sep = sys.argv.index("--")
    point, *n = sys.argv[1:sep]
    KILL_POINTS[point](Counter(int(n[0]) if n else 1))
    from nbflow.cli import main as nbflow

    nbflow(sys.argv[sep + 1:])


if __name__ == "__main__":
    main()
