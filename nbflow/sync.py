"""The sync face of the async API: run a coroutine to its end from plain code, or from code that already runs an
event loop (a Jupyter kernel runs one: `asyncio.run` would refuse there)."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)`; under a running loop, the same in a thread of its own, waited for here.

    Ctrl-C (a kernel interrupt) while waiting cancels the coroutine, waits for it to clean up (the run records
    itself cancelled and stops its kernels), then raises KeyboardInterrupt here, as it would without a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    return _in_thread(coro)


def _in_thread(coro: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.new_event_loop()
    task: asyncio.Future[T] | None = None
    ready = threading.Event()
    outcome: dict[str, Any] = {}

    def main() -> None:
        nonlocal task
        asyncio.set_event_loop(loop)
        try:
            task = loop.create_task(coro)
            ready.set()
            outcome["value"] = loop.run_until_complete(task)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread, which raises it
            outcome["error"] = e
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    thread = threading.Thread(target=main, name="nbflow-run", daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        ready.wait()
        if task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # it ended and closed its loop meanwhile
                pass
        thread.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
