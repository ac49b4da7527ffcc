"""The scheduling part of the Store: schedules, slots, sensor files and the scheduler lease, of one project.

A mixin of `Store` (same connection, same BEGIN IMMEDIATE transactions). A slot or a sensor file is a unit of
scheduled work (a "work item"): one row, claimed once. UNIQUE(project, schedule, slot) and UNIQUE(project, sensor,
path) are what make a slot run at most once however many schedulers or backfills race for it; the lease (one per
project) only keeps a second daemon idle.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, LeaseLostError, NotFoundError
from ..states import WorkState

if TYPE_CHECKING:
    from .db import Db

ITEM_TABLES = {"slot": ("schedule_slots", "schedule"), "file": ("sensor_files", "sensor")}
ITEM_FIELDS = ("status", "reason", "run_id", "owner", "tries", "claimed_at", "started_at", "ended_at")
SCHEDULE_COLUMNS = ("source", "cron", "timezone", "parameters", "only_tasks", "catchup", "max_concurrent", "overlap", "jobs",
                    "sla", "alert")


def _schedule(row: dict[str, Any]) -> dict[str, Any]:
    row["parameters"] = json.loads(row["parameters"] or "{}")
    row["only_tasks"] = json.loads(row["only_tasks"] or "[]")
    row["paused"] = bool(row["paused"])
    return row


def _encode(row: Mapping[str, Any]) -> list[Any]:
    return [json.dumps(row[c], sort_keys=True) if c in ("parameters", "only_tasks") else row.get(c) for c in SCHEDULE_COLUMNS]


class ScheduleStore:
    """Scheduling tables. Expects `_db`, `_write`, `_event` and `path` from Store."""

    _db: Db
    path: str
    project: str
    _write: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _event: Callable[..., None]
    _register: Callable[[sqlite3.Connection], None]

    # schedules

    def sync_config_schedules(self, rows: Iterable[Mapping[str, Any]], now: float) -> None:
        """Make the store's config-sourced schedules match nbflow.toml; keep their paused flag and history.

        A schedule added with the CLI under a name that nbflow.toml now declares becomes the config's.
        """
        rows = list(rows)
        names = [r["name"] for r in rows]
        with self._write() as conn:
            if rows:
                self._register(conn)
            for r in rows:
                values = _encode(r)
                cur = conn.execute(
                    f"UPDATE schedules SET {', '.join(f'{c} = ?' for c in SCHEDULE_COLUMNS)}, updated_at = ? WHERE project = ? "
                    f"AND name = ? AND ({' OR '.join(f'{c} IS NOT ?' for c in SCHEDULE_COLUMNS)})",
                    [*values, now, self.project, r["name"], *values],
                )
                if not cur.rowcount:
                    conn.execute(
                        f"INSERT OR IGNORE INTO schedules (project, name, {', '.join(SCHEDULE_COLUMNS)}, paused, since, created_at, "
                        f"updated_at) VALUES (?, ?, {', '.join('?' for _ in SCHEDULE_COLUMNS)}, 0, ?, ?, ?)",
                        [self.project, r["name"], *values, now, now, now],
                    )
            marks = ", ".join("?" for _ in names)
            conn.execute(f"DELETE FROM schedules WHERE project = ? AND source = 'config' AND name NOT IN ({marks})",
                         [self.project, *names])

    def add_schedule(self, row: Mapping[str, Any], now: float) -> None:
        """A CLI schedule; ConflictError when the name is taken."""
        with self._write() as conn:
            self._register(conn)
            found = conn.execute("SELECT source FROM schedules WHERE project = ? AND name = ?", (self.project, row["name"])).fetchone()
            if found:
                where = "nbflow.toml" if found[0] == "config" else "the store (added with `nbflow schedule add`)"
                raise ConflictError(f"schedule '{row['name']}' already exists in {where}. Fix: pick another name, "
                                    f"or remove it first (`nbflow schedule remove {row['name']}`)")
            conn.execute(
                f"INSERT INTO schedules (project, name, {', '.join(SCHEDULE_COLUMNS)}, paused, since, created_at, updated_at) "
                f"VALUES (?, ?, {', '.join('?' for _ in SCHEDULE_COLUMNS)}, 0, ?, ?, ?)",
                [self.project, row["name"], *_encode(row), now, now, now],
            )
            self._event(conn, "schedule_added", None, None, {"schedule": row["name"], "cron": row["cron"]})

    def remove_schedule(self, name: str) -> None:
        """Delete a schedule's definition; its slots stay as history."""
        with self._write() as conn:
            cur = conn.execute("DELETE FROM schedules WHERE project = ? AND name = ?", (self.project, name))
            if not cur.rowcount:
                raise NotFoundError(f"no schedule '{name}' in {self.path}. Fix: `nbflow schedule list` shows the names")
            self._event(conn, "schedule_removed", None, None, {"schedule": name})

    def set_schedule_paused(self, name: str, paused: bool, now: float) -> None:
        """Pause or resume. Resuming moves `since` to now: slots due while paused are not run (backfill runs them)."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE schedules SET since = CASE WHEN paused = 1 AND ? = 0 THEN max(since, ?) ELSE since END, "
                "paused = ?, updated_at = ? WHERE project = ? AND name = ?",
                (int(paused), now, int(paused), now, self.project, name),
            )
            if not cur.rowcount:
                raise NotFoundError(f"no schedule '{name}' in {self.path}. Fix: `nbflow schedule list` shows the names")
            self._event(conn, "schedule_paused" if paused else "schedule_resumed", None, None, {"schedule": name})

    def schedule_rows(self) -> list[dict[str, Any]]:
        """Every schedule in the store, by name, with parameters and only_tasks decoded."""
        return [_schedule(r) for r in self._db.rows("SELECT * FROM schedules WHERE project = ? ORDER BY name", [self.project])]

    def schedule_row(self, name: str) -> dict[str, Any] | None:
        row = self._db.row("SELECT * FROM schedules WHERE project = ? AND name = ?", [self.project, name])
        return None if row is None else _schedule(row)

    # work items: schedule slots and sensor files

    @staticmethod
    def _table(kind: str) -> tuple[str, str]:
        if kind not in ITEM_TABLES:
            raise ValueError(f"unknown work item kind {kind!r}; expected one of {', '.join(ITEM_TABLES)}")
        return ITEM_TABLES[kind]

    def _check_lease(self, conn: sqlite3.Connection, lease_owner: str | None) -> None:
        if lease_owner is None:
            return
        found = conn.execute("SELECT owner FROM scheduler_lease WHERE project = ?", (self.project,)).fetchone()
        if found is None or found[0] != lease_owner:
            raise LeaseLostError(f"this scheduler ({lease_owner}) no longer holds the store's lease "
                                 f"(holder: {found[0] if found else 'none'})")

    def last_slot_ts(self, schedule: str) -> float | None:
        """The newest slot recorded for a schedule (epoch seconds), or None."""
        value = self._db.scalar("SELECT max(slot_ts) FROM schedule_slots WHERE project = ? AND schedule = ?", [self.project, schedule])
        return None if value is None else float(value)

    def claim_slot(self, schedule: str, slot: str, slot_ts: float, run_date: str, trigger: str, status: WorkState, owner: str, *,
                   now: float, reason: str | None = None, lease_owner: str | None = None,
                   retake: Iterable[WorkState] = ()) -> dict[str, Any] | None:
        """Record a slot as `status` (running, queued or skipped) for `owner`, once.

        Returns the row, or None when the slot is already recorded (and not in a `retake` state: a backfill
        takes failed, skipped and interrupted slots again). With `lease_owner`, raises LeaseLostError unless
        that owner holds the lease, checked in the same transaction (a deposed scheduler claims nothing).
        """
        status = WorkState(status)
        if status not in (WorkState.RUNNING, WorkState.QUEUED, WorkState.SKIPPED):
            raise ValueError(f"cannot claim a slot as {status!r}")
        retake = tuple(retake)
        with self._write() as conn:
            self._check_lease(conn, lease_owner)
            started = now if status == WorkState.RUNNING else None
            cur = conn.execute(
                "INSERT OR IGNORE INTO schedule_slots (project, schedule, slot, slot_ts, run_date, trigger, status, reason, owner, "
                "tries, claimed_at, started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.project, schedule, slot, slot_ts, run_date, trigger, status, reason, owner, int(status == WorkState.RUNNING),
                 now, started, now if status == WorkState.SKIPPED else None),
            )
            if not cur.rowcount:
                if not retake:
                    return None
                marks = ", ".join("?" for _ in retake)
                cur = conn.execute(
                    f"UPDATE schedule_slots SET trigger = ?, status = ?, reason = ?, owner = ?, run_id = NULL, tries = tries + ?, "
                    f"claimed_at = ?, started_at = ?, ended_at = NULL WHERE project = ? AND schedule = ? AND slot = ? "
                    f"AND status IN ({marks})",
                    (trigger, status, reason, owner, int(status == WorkState.RUNNING), now, started, self.project, schedule, slot,
                     *retake),
                )
                if not cur.rowcount:
                    return None
            row = conn.execute("SELECT id FROM schedule_slots WHERE project = ? AND schedule = ? AND slot = ?",
                               (self.project, schedule, slot)).fetchone()
            self._event(conn, "schedule_slot", None, None,
                        {"schedule": schedule, "slot": slot, "run_date": run_date, "status": status, "reason": reason, "trigger": trigger})
        return self.get_item("slot", int(row[0]))

    def claim_file(self, sensor: str, path: str, size: int, mtime: float, trigger: str, status: WorkState, owner: str, *,
                   now: float, lease_owner: str | None = None) -> dict[str, Any] | None:
        """Record a sensed file as running or queued, once per (sensor, path); None when already recorded."""
        status = WorkState(status)
        if status not in (WorkState.RUNNING, WorkState.QUEUED):
            raise ValueError(f"cannot claim a file as {status!r}")
        running = status == WorkState.RUNNING
        with self._write() as conn:
            self._check_lease(conn, lease_owner)
            cur = conn.execute(
                "INSERT OR IGNORE INTO sensor_files (project, sensor, path, size, mtime, trigger, status, owner, tries, claimed_at, "
                "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.project, sensor, path, size, mtime, trigger, status, owner, int(running), now, now if running else None),
            )
            if not cur.rowcount:
                return None
            item_id = cur.lastrowid
            self._event(conn, "sensor_file", None, None, {"sensor": sensor, "path": path, "status": status})
        assert item_id is not None
        return self.get_item("file", item_id)

    def take_item(self, kind: str, item_id: int, owner: str, *, now: float, from_states: Iterable[WorkState],
                  lease_owner: str | None = None) -> bool:
        """Make a queued, interrupted or orphaned work item this owner's and running; False when someone else took it."""
        table, _ = self._table(kind)
        states = tuple(from_states)
        marks = ", ".join("?" for _ in states)
        with self._write() as conn:
            self._check_lease(conn, lease_owner)
            cur = conn.execute(
                f"UPDATE {table} SET status = ?, owner = ?, tries = tries + 1, started_at = ?, ended_at = NULL "
                f"WHERE id = ? AND status IN ({marks})",
                (WorkState.RUNNING, owner, now, item_id, *states),
            )
            return bool(cur.rowcount)

    def update_item(self, kind: str, item_id: int, **fields: Any) -> None:
        """Set fields of a slot or sensor file (status, run_id, reason, owner, ended_at, ...) and record an event."""
        table, key = self._table(kind)
        unknown = set(fields) - set(ITEM_FIELDS)
        if unknown:
            raise TypeError(f"update_item got unknown fields {sorted(unknown)}; allowed: {ITEM_FIELDS}")
        if "status" in fields:
            fields["status"] = WorkState(fields["status"])
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self._write() as conn:
            cur = conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*fields.values(), item_id))
            if not cur.rowcount:
                raise NotFoundError(f"no {kind} {item_id} in {self.path}")
            if "status" in fields or "run_id" in fields:
                found = conn.execute(f"SELECT {key}, {'slot' if kind == 'slot' else 'path'}, run_id FROM {table} WHERE id = ?",
                                     (item_id,)).fetchone()
                self._event(conn, "schedule_slot" if kind == "slot" else "sensor_file", None, None,  # run_id in data: not a FK
                            {key: found[0], "slot" if kind == "slot" else "path": found[1], "run_id": found[2], **fields})

    def get_item(self, kind: str, item_id: int) -> dict[str, Any]:
        table, _ = self._table(kind)
        row = self._db.row(f"SELECT * FROM {table} WHERE id = ?", [item_id])
        if row is None:
            raise NotFoundError(f"no {kind} {item_id} in {self.path}")
        return row

    def items(self, kind: str, key: str | None = None, statuses: Iterable[WorkState] | None = None, *, limit: int = 10_000,
              newest_first: bool = False) -> list[dict[str, Any]]:
        """Slots (kind 'slot', by slot time) or sensor files (kind 'file', by claim order) matching the filters."""
        table, key_col = self._table(kind)
        where: list[str] = ["project = ?"]
        params: list[Any] = [self.project]
        if key is not None:
            where.append(f"{key_col} = ?")
            params.append(key)
        if statuses is not None:
            states = list(statuses)
            where.append(f"status IN ({', '.join('?' for _ in states)})")
            params.extend(states)
        order = "slot_ts" if kind == "slot" else "id"
        direction = "DESC" if newest_first else ""
        sql = f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY {order} {direction}, id LIMIT ?"
        return self._db.rows(sql, [*params, limit])

    def item_counts(self, kind: str, key: str) -> dict[str, int]:
        """How many slots (or files) of a schedule (or sensor) are in each status."""
        table, key_col = self._table(kind)
        rows = self._db.rows(f"SELECT status, count(*) AS n FROM {table} WHERE project = ? AND {key_col} = ? GROUP BY status",
                             [self.project, key])
        return {r["status"]: r["n"] for r in rows}

    def slot_row(self, schedule: str, slot: str) -> dict[str, Any] | None:
        """One slot of a schedule by its key (UTC, as cron.slot_key writes it)."""
        return self._db.row("SELECT * FROM schedule_slots WHERE project = ? AND schedule = ? AND slot = ?",
                            [self.project, schedule, slot])

    def count_items(self, kind: str, key: str, statuses: Iterable[WorkState]) -> int:
        table, key_col = self._table(kind)
        states = list(statuses)
        return int(self._db.scalar(f"SELECT count(*) FROM {table} WHERE project = ? AND {key_col} = ? "
                                   f"AND status IN ({', '.join('?' for _ in states)})", [self.project, key, *states]))

    def sensor_paths(self, sensor: str) -> set[str]:
        """Paths a sensor has recorded (triggered, queued or running): each triggers once."""
        return {r["path"] for r in self._db.rows("SELECT path FROM sensor_files WHERE project = ? AND sensor = ?",
                                                 [self.project, sensor])}

    def find_run(self, trigger: str, since: float, *, logical_date: str | None = None,
                 parameter: tuple[str, Any] | None = None) -> str | None:
        """The newest run with this trigger created at or after `since` (and this run_date, or this parameter value):
        the run of a claim whose run id was not linked before a crash."""
        where, params = ["project = ?", "trigger = ?", "created_at >= ?"], [self.project, trigger, since - 1.0]
        if logical_date is not None:
            where.append("logical_date = ?")
            params.append(logical_date)
        if parameter is not None:
            where.append("json_extract(parameters, ?) = ?")
            params.extend([f"$.{parameter[0]}", parameter[1]])
        found: str | None = self._db.scalar(f"SELECT id FROM runs WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT 1", params)
        return found

    # the scheduler lease: one row per project; its holder is the project's active scheduler

    def lease(self) -> dict[str, Any] | None:
        return self._db.row("SELECT owner, host, pid, acquired_at, heartbeat_at FROM scheduler_lease WHERE project = ?",
                            [self.project])

    def acquire_lease(self, owner: str, host: str, pid: int, now: float, ttl: float,
                      holder_dead: Callable[[dict[str, Any]], bool]) -> tuple[bool, dict[str, Any]]:
        """Take the lease if it is free, ours, expired (no heartbeat for `ttl` s) or its holder is dead.

        Returns (acquired, holder row after the attempt).
        """
        with self._write() as conn:
            self._register(conn)
            found = conn.execute("SELECT owner, host, pid, acquired_at, heartbeat_at FROM scheduler_lease WHERE project = ?",
                                 (self.project,)).fetchone()
            current = None if found is None else dict(zip(("owner", "host", "pid", "acquired_at", "heartbeat_at"), found))
            free = current is None or current["owner"] == owner or now - current["heartbeat_at"] > ttl or holder_dead(current)
            if free:
                conn.execute("INSERT OR REPLACE INTO scheduler_lease (project, owner, host, pid, acquired_at, heartbeat_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (self.project, owner, host, pid, now, now))
                self._event(conn, "scheduler_lease", None, None,
                            {"owner": owner, "previous": current["owner"] if current else None})
                current = {"owner": owner, "host": host, "pid": pid, "acquired_at": now, "heartbeat_at": now}
        assert current is not None
        return free, current

    def renew_lease(self, owner: str, now: float) -> bool:
        """Heartbeat; False when another scheduler took the lease meanwhile."""
        with self._write() as conn:
            cur = conn.execute("UPDATE scheduler_lease SET heartbeat_at = ? WHERE project = ? AND owner = ?", (now, self.project, owner))
            return bool(cur.rowcount)

    def release_lease(self, owner: str) -> None:
        """Give the lease up (a clean stop), so a standby takes over at once."""
        with self._write() as conn:
            conn.execute("DELETE FROM scheduler_lease WHERE project = ? AND owner = ?", (self.project, owner))
