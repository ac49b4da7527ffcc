"""Read-only views of schedules, sensors and the scheduler, for the CLI's tables and the JupyterLab panel."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..liveness import LEASE_TTL_SECONDS, Holder, gone
from . import cron, sensor
from .spec import ScheduleSpec, SensorSpec, schedule_from_row

if TYPE_CHECKING:
    from ..store import Store

SLOT_KEYS = ("slot", "run_date", "trigger", "status", "reason", "run_id", "claimed_at", "ended_at")
FILE_KEYS = ("path", "size", "status", "reason", "run_id", "claimed_at", "ended_at")


def describe_schedules(store: Store | None, config: Iterable[ScheduleSpec], now: dt.datetime,
                       upcoming: int = 3) -> list[dict[str, Any]]:
    """Every schedule (nbflow.toml's and the CLI's) with its next fire times, paused flag, last slot and slot counts.

    nbflow.toml's definition wins over the store's copy (the scheduler syncs it when it starts); reading writes nothing
    (`store` is None while the project has none).
    """
    rows = {r["name"]: r for r in store.schedule_rows()} if store else {}
    specs = {s.name: s for s in config}
    out = []
    for name in sorted(set(rows) | set(specs)):
        row = rows.get(name)
        spec = specs.get(name) or schedule_from_row(rows[name])
        paused = bool(row and row["paused"])
        fires = [] if paused else [t.isoformat() for t in cron.next_fires(spec.cron, spec.tz, now, upcoming)]
        last = store.items("slot", name, limit=1, newest_first=True) if store else []
        out.append({
            "name": name, "source": spec.source, "cron": spec.cron, "timezone": spec.timezone,
            "cron_description": cron.describe(spec.cron), "cron_warning": cron.seconds_warning(spec.cron),
            "parameters": dict(spec.parameters), "only": list(spec.only), "catchup": spec.catchup,
            "max_concurrent": spec.max_concurrent, "overlap": spec.overlap, "paused": paused, "sla": spec.sla, "alert": spec.alert,
            "next_fire": fires[0] if fires else None, "next_fires": fires,
            "last_slot": {k: last[0][k] for k in SLOT_KEYS} if last else None,
            "slots": store.item_counts("slot", name) if store else {},
        })
    return out


def describe_sensors(store: Store | None, sensors: Iterable[SensorSpec], root: str) -> list[dict[str, Any]]:
    """Each sensor with the files it recorded (triggered, queued, running) and the matching files not yet triggered."""
    out = []
    for s in sensors:
        files = store.items("file", s.name) if store else []
        recorded = {f["path"] for f in files}
        pending = [{"path": p, "size": size} for p, size, _ in sensor.scan(root, s.glob) if p not in recorded]
        out.append({
            "name": s.name, "glob": s.glob, "parameter": s.parameter, "stable_seconds": s.stable_seconds,
            "parameters": dict(s.parameters), "only": list(s.only), "max_concurrent": s.max_concurrent,
            "files": [{k: f[k] for k in FILE_KEYS} for f in files], "pending": pending,
            "counts": store.item_counts("file", s.name) if store else {},
        })
    return out


def scheduler_status(store: Store | None, now: dt.datetime) -> dict[str, Any]:
    """Whether a scheduler holds the project's lease: its heartbeat is fresh and, on this host, its process exists
    (a scheduler killed with kill -9 shows as stopped at once, not after the lease's TTL), and which one."""
    lease = store.lease() if store else None
    if lease is None:
        return {"running": False, "holder": None}
    age = now.timestamp() - lease["heartbeat_at"]
    alive = age <= LEASE_TTL_SECONDS and not gone(Holder(lease["host"], lease["pid"]), ttl=math.inf)
    return {"running": alive, "holder": {**lease, "heartbeat_age": age}}
