"""Read-only views of schedules, sensors and the scheduler, for the CLI's tables and the JupyterLab panel."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import cron, sensor
from .daemon import LEASE_TTL_SECONDS
from .spec import ScheduleSpec, SensorSpec, schedule_from_row

if TYPE_CHECKING:
    from ..store import Store

SLOT_KEYS = ("slot", "run_date", "trigger", "status", "reason", "run_id", "claimed_at", "ended_at")
FILE_KEYS = ("path", "size", "status", "reason", "run_id", "claimed_at", "ended_at")


def describe_schedules(store: Store, config: Iterable[ScheduleSpec], now: dt.datetime, upcoming: int = 3) -> list[dict[str, Any]]:
    """Every schedule (nbflow.toml's and the CLI's) with its next fire times, paused flag, last slot and slot counts.

    nbflow.toml's definition wins over the store's copy (the scheduler syncs it when it starts); reading writes nothing.
    """
    rows = {r["name"]: r for r in store.schedule_rows()}
    specs = {s.name: s for s in config}
    out = []
    for name in sorted(set(rows) | set(specs)):
        row = rows.get(name)
        spec = specs.get(name) or schedule_from_row(rows[name])
        paused = bool(row and row["paused"])
        fires = [] if paused else [t.isoformat() for t in cron.next_fires(spec.cron, spec.tz, now, upcoming)]
        last = store.jobs("slot", name, limit=1, newest_first=True)
        out.append({
            "name": name, "source": spec.source, "cron": spec.cron, "timezone": spec.timezone,
            "parameters": dict(spec.parameters), "only": list(spec.only), "catchup": spec.catchup,
            "max_concurrent": spec.max_concurrent, "overlap": spec.overlap, "paused": paused,
            "next_fire": fires[0] if fires else None, "next_fires": fires,
            "last_slot": {k: last[0][k] for k in SLOT_KEYS} if last else None,
            "slots": store.job_counts("slot", name),
        })
    return out


def describe_sensors(store: Store, sensors: Iterable[SensorSpec], root: str) -> list[dict[str, Any]]:
    """Each sensor with the files it recorded (triggered, queued, running) and the matching files not yet triggered."""
    out = []
    for s in sensors:
        files = store.jobs("file", s.name)
        recorded = {f["path"] for f in files}
        pending = [{"path": p, "size": size} for p, size, _ in sensor.scan(root, s.glob) if p not in recorded]
        out.append({
            "name": s.name, "glob": s.glob, "parameter": s.parameter, "stable_seconds": s.stable_seconds,
            "parameters": dict(s.parameters), "only": list(s.only), "max_concurrent": s.max_concurrent,
            "files": [{k: f[k] for k in FILE_KEYS} for f in files], "pending": pending,
            "counts": store.job_counts("file", s.name),
        })
    return out


def scheduler_status(store: Store, now: dt.datetime) -> dict[str, Any]:
    """Whether a scheduler holds the store's lease (its heartbeat is fresh), and which one."""
    lease = store.lease()
    if lease is None:
        return {"running": False, "holder": None}
    age = now.timestamp() - lease["heartbeat_at"]
    return {"running": age <= LEASE_TTL_SECONDS, "holder": {**lease, "heartbeat_age": age}}
