"""Fakes for scheduler unit tests: a clock the test moves, and a launcher that records runs in the real store
without starting kernels. (Real runs are in test_schedule_e2e.py.)"""
from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Callable

from nbflow.errors import NotFoundError
from nbflow.schedule.work import RunRequest
from nbflow.store import Store

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    """An aware UTC datetime from '2026-01-10T12:00'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.t = start

    def now(self) -> dt.datetime:
        return self.t

    def set(self, when: dt.datetime) -> None:
        self.t = when

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


class FakeStarter:
    """A RunStarter: each run is a real row in the store; `hold` keeps runs going until `release()`; `fail_dates` fail."""

    def __init__(self, store: Store, hold: bool = False) -> None:
        self.store = store
        self.hold = hold
        self.requests: list[RunRequest] = []
        self.resumed: list[str] = []
        self.mine: dict[str, str] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.fail_dates: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0

    async def run(self, request: RunRequest, started: Callable[[str], None]) -> str:
        run_id = "run-" + secrets.token_hex(4)
        self.requests.append(request)
        self.store.create_run(run_id, trigger=request.trigger, logical_date=request.logical_date or "today",
                              parameters=dict(request.parameters), selection={}, tasks=[], schedule=request.schedule)
        self.mine[run_id] = "running"
        started(run_id)
        return await self._finish(run_id, "failed" if request.logical_date in self.fail_dates else "succeeded")

    async def resume(self, run_id: str) -> str:
        self.resumed.append(run_id)
        self.mine[run_id] = "running"
        return await self._finish(run_id, "succeeded")

    async def _finish(self, run_id: str, status: str) -> str:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold:
                gate = self.gates[run_id] = asyncio.Event()
                await gate.wait()
            else:
                await asyncio.sleep(0.01)
        finally:
            self.in_flight -= 1
        self.mine[run_id] = status
        self.store.finish_run(run_id, status)
        return status

    def release(self) -> None:
        for gate in self.gates.values():
            gate.set()

    def liveness(self, run_id: str) -> str | None:
        if run_id in self.mine:
            return self.mine[run_id]
        try:
            run = self.store.get_run(run_id)
        except NotFoundError:
            return None
        return "crashed" if run.status == "running" else run.status  # a run of another (dead) process


async def settle(scheduler) -> None:
    """Let the scheduler's running jobs finish (they must not be held)."""
    while scheduler.active:
        await asyncio.gather(*list(scheduler.active.values()), return_exceptions=True)
