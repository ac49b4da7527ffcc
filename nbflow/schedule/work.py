"""What the scheduler and backfill share: the request to start a run, the RunStarter that starts it, who owns a
claimed work item (a schedule slot or a sensor file), whether a claim was abandoned, and the one lifecycle of a
claimed item from its run's start to its recorded end."""
from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import NbflowError, RunConflictError
from ..liveness import HOST, gone, parse_owner
from ..states import RunState, WorkState
from .clock import Clock

if TYPE_CHECKING:
    from ..store import Store

INTERRUPTED = "interrupted during its run; the next scheduler (or the same backfill, run again) resumes it"


@dataclass(frozen=True)
class RunRequest:
    """One pipeline run to start: what Project.run_async gets."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    only: tuple[str, ...] = ()
    trigger: str = "schedule"
    logical_date: str | None = None
    schedule: str | None = None
    jobs: int | None = None  # tasks at once within the run


class RunStarter(Protocol):
    """Starts and resumes pipeline runs. The project's own starter runs them in this process's event loop
    (nbflow.project); tests pass a fake."""

    async def run(self, request: RunRequest, started: Callable[[str], None]) -> RunState:
        """Run to the end; call `started(run_id)` once the run is recorded; return its final status."""
        ...

    async def resume(self, run_id: str) -> RunState:
        """Resume an interrupted or crashed run to the end; return its final status."""
        ...

    def liveness(self, run_id: str) -> RunState | None:
        """The run's status as the store shows it ('crashed' when its runner is gone); None if there is no such run."""
        ...


def process_gone(owner: str | None) -> bool:
    """True when the owner ran on this host in a process that no longer exists."""
    _, holder = parse_owner(owner)
    return holder.host == HOST and bool(holder.pid) and gone(holder, ttl=math.inf)


def abandoned(row: Mapping[str, Any], me: str, lease_holder: str | None) -> bool:
    """A 'running' work item whose owner cannot be running it: a process that is gone, or a scheduler that is not
    the lease holder (it lost the lease, so it stopped or was deposed)."""
    owner = row["owner"]
    if owner == me:
        return False
    if process_gone(owner):
        return True
    kind, _ = parse_owner(owner)
    return kind == "scheduler" and owner != lease_holder


@dataclass
class ItemOutcome:
    status: WorkState
    run_id: str | None = None
    reason: str | None = None


async def run_item(store: Store, starter: RunStarter, kind: str, item_id: int, request: RunRequest, clock: Clock, *,
                   resume: str | None = None, started: Callable[[str], None] | None = None) -> ItemOutcome:
    """The lifecycle of a claimed slot or file: start (or resume) its run, link the run to it, record how it ended.

    A run that was cancelled, or this coroutine being cancelled, leaves the item `interrupted` (resumed later);
    an error starting the run leaves it `failed` with the reason; a run whose data another live run holds leaves
    it `queued`, with the reason, to be taken again later. Never raises but for cancellation."""
    outcome = ItemOutcome(WorkState.RUNNING, run_id=resume)

    def linked(run_id: str) -> None:
        outcome.run_id = run_id
        store.update_item(kind, item_id, run_id=run_id)
        if started is not None:
            started(run_id)

    try:
        status = await (starter.resume(resume) if resume else starter.run(request, linked))
    except RunConflictError as e:  # another run holds its data: the item waits in the queue, and says why
        outcome.status, outcome.reason = WorkState.QUEUED, f"waits for run {e.run_id} (pid {e.pid}), which holds {e.path}"
        store.update_item(kind, item_id, status=outcome.status, reason=outcome.reason)
        return outcome
    except asyncio.CancelledError:
        store.update_item(kind, item_id, status=WorkState.INTERRUPTED, reason=INTERRUPTED, ended_at=clock.now().timestamp())
        raise
    except NbflowError as e:
        outcome.status, outcome.reason = WorkState.FAILED, str(e)
    except Exception as e:  # noqa: BLE001 - recorded on the item; the scheduler or backfill goes on
        outcome.status, outcome.reason = WorkState.FAILED, f"nbflow could not run it: {type(e).__name__}: {e}"
    else:
        outcome.status = WorkState.INTERRUPTED if status == RunState.CANCELLED else WorkState(str(status))
        outcome.reason = INTERRUPTED if status == RunState.CANCELLED else None
    store.update_item(kind, item_id, status=outcome.status, reason=outcome.reason, ended_at=clock.now().timestamp())
    return outcome
