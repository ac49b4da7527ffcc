"""The operations part of the Store: alerts and their deliveries, failure streaks, circuit breakers, and the
histories that forecasts read. A mixin of `Store` (same connection, same BEGIN IMMEDIATE transactions), scoped to
the store's project like every other table."""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from ..records import AlertRecord, BreakerRecord, DeliveryRecord, record_fields
from ..states import AttemptState, BreakerState, DeliveryState, Severity

if TYPE_CHECKING:
    from .db import Db

T = TypeVar("T")
_ALERT_COLUMNS = tuple(f for f in record_fields(AlertRecord) if f != "deliveries")
_DELIVERY_COLUMNS = record_fields(DeliveryRecord)
_BREAKER_COLUMNS = record_fields(BreakerRecord)


def _alert(row: Sequence[Any], deliveries: tuple[DeliveryRecord, ...]) -> AlertRecord:
    values = dict(zip(_ALERT_COLUMNS, row))
    values["severity"] = Severity(values["severity"])
    return AlertRecord(**values, deliveries=deliveries)


def _delivery(row: Sequence[Any]) -> DeliveryRecord:
    values = dict(zip(_DELIVERY_COLUMNS, row))
    values["status"] = DeliveryState(values["status"])
    return DeliveryRecord(**values)


def _breaker(row: Sequence[Any]) -> BreakerRecord:
    values = dict(zip(_BREAKER_COLUMNS, row))
    values["state"] = BreakerState(values["state"])
    values["failures"] = tuple(json.loads(values["failures"] or "[]"))
    return BreakerRecord(**values)


class OpsStore:
    """Operations tables. Expects `_db`, `_write`, `_event` and `project` from Store."""

    _db: Db
    project: str
    _write: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _event: Callable[..., None]

    # failure streaks: one alert per task per streak

    def open_streak(self, key: str, run_id: str | None, now: float) -> int:
        """Count one more failure in the streak `key` (opening it if none is open); return the failures so far."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO alert_streaks (project, key, opened_at, run_id, failures, last_at) VALUES (?, ?, ?, ?, 1, ?) "
                "ON CONFLICT (project, key) DO UPDATE SET failures = failures + 1, last_at = excluded.last_at",
                (self.project, key, now, run_id, now),
            )
            return int(conn.execute("SELECT failures FROM alert_streaks WHERE project = ? AND key = ?",
                                    (self.project, key)).fetchone()[0])

    def close_streak(self, key: str) -> dict[str, Any] | None:
        """End the streak `key`: its row (opened_at, run_id, failures, last_at), or None when none was open."""
        with self._write() as conn:
            cur = conn.execute("SELECT opened_at, run_id, failures, last_at FROM alert_streaks WHERE project = ? AND key = ?",
                               (self.project, key))
            names = [d[0] for d in cur.description]
            found = cur.fetchone()
            if found is None:
                return None
            conn.execute("DELETE FROM alert_streaks WHERE project = ? AND key = ?", (self.project, key))
            return dict(zip(names, found))

    def open_streaks(self) -> list[dict[str, Any]]:
        """The failure streaks open now, oldest first."""
        return self._db.rows("SELECT key, opened_at, run_id, failures, last_at FROM alert_streaks WHERE project = ? "
                             "ORDER BY opened_at", [self.project])

    # alerts and deliveries

    def count_routed_alerts(self, since: float, severity: Severity) -> int:
        """How many alerts of a severity were routed to targets since `since` (the rate limit counts these)."""
        return int(self._db.scalar("SELECT count(*) FROM alerts WHERE project = ? AND severity = ? AND outcome = 'routed' "
                                   "AND created_at >= ?", [self.project, str(severity), since]))

    def record_alert(self, fields: dict[str, Any], outcome: str, targets: Iterable[str], owner: str,
                     now: float) -> tuple[int, list[int]]:
        """Record an alert and one pending delivery per target (in one transaction): (alert id, delivery ids)."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO alerts (project, created_at, severity, event, key, run_id, task, title, body, data, outcome) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.project, now, str(fields["severity"]), fields["event"], fields.get("key"), fields.get("run_id"),
                 fields.get("task"), fields["title"], fields["body"], json.dumps(fields.get("data") or {}, default=str), outcome),
            )
            alert_id = cur.lastrowid
            assert alert_id is not None
            ids = []
            for target in targets:
                cur = conn.execute(
                    "INSERT INTO alert_deliveries (alert_id, project, target, status, attempts, owner, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, 0, ?, ?, ?)", (alert_id, self.project, target, DeliveryState.PENDING, owner, now, now))
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
            run_id = fields.get("run_id")
            known = run_id is not None and conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None
            self._event(conn, "alert", run_id if known else None, fields.get("task"),
                        {"alert": alert_id, "event": fields["event"], "severity": str(fields["severity"]), "outcome": outcome,
                         "run_id": run_id})
        return alert_id, ids

    def update_delivery(self, delivery_id: int, status: DeliveryState, attempts: int, error: str | None, now: float) -> None:
        """Record an attempt's outcome (attempts so far, the last error)."""
        with self._write() as conn:
            conn.execute("UPDATE alert_deliveries SET status = ?, attempts = ?, error = ?, updated_at = ? WHERE id = ?",
                         (DeliveryState(status), attempts, error, now, delivery_id))
            if status != DeliveryState.PENDING:
                self._event(conn, "alert_delivery", None, None, {"delivery": delivery_id, "status": str(status)})

    def alerts(self, limit: int = 50, offset: int = 0) -> list[AlertRecord]:
        """Recent alerts, newest first, each with its deliveries."""
        rows = self._db.tuples(f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts WHERE project = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                               [self.project, limit, offset])
        if not rows:
            return []
        ids = [r[0] for r in rows]
        found: dict[int, list[DeliveryRecord]] = {}
        marks = ", ".join("?" for _ in ids)
        for d in self._db.tuples(f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM alert_deliveries WHERE alert_id IN ({marks}) "
                                 "ORDER BY id", ids):
            rec = _delivery(d)
            found.setdefault(rec.alert_id, []).append(rec)
        return [_alert(r, tuple(found.get(r[0], ()))) for r in rows]

    # circuit breakers

    def breaker(self, name: str) -> BreakerRecord | None:
        row = self._db.tuple_row(f"SELECT {', '.join(_BREAKER_COLUMNS)} FROM breakers WHERE project = ? AND name = ?",
                                 [self.project, name])
        return None if row is None else _breaker(row)

    def breakers(self) -> list[BreakerRecord]:
        """Every breaker this project has recorded, by name."""
        return [_breaker(r) for r in self._db.tuples(f"SELECT {', '.join(_BREAKER_COLUMNS)} FROM breakers WHERE project = ? "
                                                     "ORDER BY name", [self.project])]

    def update_breaker(self, name: str, change: Callable[[BreakerRecord | None], tuple[BreakerRecord | None, T]]) -> T:
        """Read a breaker, apply `change` (a pure function: the new record, or None to leave it, and a result) and
        write it back, in one BEGIN IMMEDIATE transaction: runs in several processes share the breaker safely."""
        with self._write() as conn:
            row = conn.execute(f"SELECT {', '.join(_BREAKER_COLUMNS)} FROM breakers WHERE project = ? AND name = ?",
                               (self.project, name)).fetchone()
            new, result = change(None if row is None else _breaker(row))
            if new is not None:
                conn.execute(
                    f"INSERT OR REPLACE INTO breakers ({', '.join(_BREAKER_COLUMNS)}) VALUES ({', '.join('?' for _ in _BREAKER_COLUMNS)})",
                    (self.project, name, BreakerState(new.state), json.dumps(list(new.failures)), new.opened_at, new.last_error,
                     new.probe_owner, new.probe_at, new.updated_at),
                )
                before = None if row is None else str(row[2])
                if before != str(new.state):
                    self._event(conn, "breaker", None, None, {"breaker": name, "state": str(new.state)})
            return result

    # histories for forecasts

    def task_durations(self, tasks: Iterable[str], limit: int) -> dict[str, list[float]]:
        """Durations (s) of the last `limit` successful attempts of each task, newest first."""
        names = list(dict.fromkeys(tasks))
        if not names:
            return {}
        marks = ", ".join("?" for _ in names)
        rows = self._db.tuples(
            "SELECT task, secs FROM (SELECT a.task, a.ended_at - a.started_at AS secs, "
            "row_number() OVER (PARTITION BY a.task ORDER BY a.id DESC) AS n FROM attempts a JOIN runs r ON r.id = a.run_id "
            f"WHERE r.project = ? AND a.status = ? AND a.task IN ({marks}) AND a.ended_at IS NOT NULL AND a.started_at IS NOT NULL) "
            "WHERE n <= ? ORDER BY task, n", [self.project, AttemptState.SUCCEEDED, *names, limit])
        out: dict[str, list[float]] = {}
        for task, secs in rows:
            out.setdefault(task, []).append(max(0.0, float(secs)))
        return out

    def slot_time(self, run_id: str) -> float | None:
        """The scheduled time (UTC seconds) of the slot a run was started for, None when none was."""
        found = self._db.scalar("SELECT slot_ts FROM schedule_slots WHERE project = ? AND run_id = ? ORDER BY id DESC LIMIT 1",
                                [self.project, run_id])
        return None if found is None else float(found)
