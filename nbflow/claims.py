"""Run claims: a running run holds the datasets it will read and write, so that a second run of the same data is
refused (or waits) instead of overwriting files under the first one's feet. One rule for the CLI, the REST API
and the scheduler; a claim of a runner that is gone (by nbflow/liveness.py) holds nothing."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import paths
from .engine import plan
from .liveness import RUN_TTL_SECONDS, Holder, gone
from .model import Pipeline

READ, WRITE = "read", "write"


@dataclass(frozen=True)
class Claim:
    project: str  # '' for a path outside every project (absolute: shared by all projects of a store)
    path: str  # the dataset's key, placeholders filled with the run's parameters (may be a folder or a glob)
    mode: str  # READ or WRITE


@dataclass(frozen=True)
class Held:
    """A claim of a run recorded running, with what liveness needs to know whether its runner is still there."""

    claim: Claim
    run_id: str
    holder: Holder


def claims_of(pipeline: Pipeline, tasks: Iterable[str], parameters: Mapping[str, Any], project: str) -> list[Claim]:
    """What a run of these tasks will read and write, with its parameters (tasks skipped as up to date included)."""
    found: dict[Claim, None] = {}
    for name in tasks:
        task = pipeline.tasks[name]
        for mode, templates in ((WRITE, task.writes), (READ, task.reads)):
            for template in templates:
                key = plan.resolve(template, parameters, task, pipeline.root)
                found[Claim("" if os.path.isabs(key) or paths.is_url(key) else project, key, mode)] = None
    writes = {(c.project, c.path) for c in found if c.mode == WRITE}
    return [c for c in found if c.mode == WRITE or (c.project, c.path) not in writes]  # a path read and written: written


def clash(mine: Claim, theirs: Claim) -> bool:
    """Two claims clash when they can name one file and at least one of them writes it."""
    return (mine.project == theirs.project and WRITE in (mine.mode, theirs.mode)
            and paths.overlap_example(mine.path, theirs.path) is not None)


def first_conflict(mine: Iterable[Claim], held: Iterable[Held], now: float | None = None) -> tuple[Held, Claim] | None:
    """The first claim of a live run that clashes with one of ours, and ours; None when this run may start."""
    mine = list(mine)
    alive: dict[str, bool] = {}
    for h in held:
        if h.run_id not in alive:
            alive[h.run_id] = not gone(h.holder, RUN_TTL_SECONDS, now)
        if not alive[h.run_id]:
            continue
        for claim in mine:
            if clash(claim, h.claim):
                return h, claim
    return None
