"""Versioned schema migrations. The schema version lives in `PRAGMA user_version`.

Append a function to MIGRATIONS to change the schema; never edit one that has shipped.
Each pending migration runs in its own BEGIN IMMEDIATE transaction, and the version is re-read once
the lock is held, so two processes opening a fresh file at once do not both migrate.

Write schema changes with `create_table` and `create_index` below: sqlite-utils builds the SQL, we run it
inside our transaction. (sqlite-utils 3.x `Table.create()` wraps itself in `with conn:`, which would
commit the migration's transaction half way.)
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import StoreError, StoreVersionError
from .db import Db

if TYPE_CHECKING:
    from sqlite_utils import Database


def create_table(db: Database, name: str, columns: dict[str, Any], **options: Any) -> None:
    """CREATE TABLE from sqlite-utils' column types and options (pk, not_null, foreign_keys, defaults)."""
    db.conn.execute(db.create_table_sql(name, columns, **options))


def create_index(db: Database, table: str, columns: Sequence[str], unique: bool = False) -> None:
    """CREATE INDEX idx_<table>_<columns>, named the way sqlite-utils names them."""
    cols = ", ".join(f'"{c}"' for c in columns)
    kind = "UNIQUE INDEX" if unique else "INDEX"
    db.conn.execute(f'CREATE {kind} "idx_{table}_{"_".join(columns)}" ON "{table}" ({cols})')


def _v1_initial(db: Database) -> None:
    """Runs, their tasks, attempts, events, and dataset lineage."""
    create_table(
        db, "runs",
        {
            "id": str, "project": str, "trigger": str, "logical_date": str, "parameters": str,
            "selection": str, "status": str, "created_at": float, "started_at": float,
            "ended_at": float, "host": str, "pid": int, "heartbeat_at": float, "schedule": str,
            "resumed_from": str,
        },
        pk="id",
        not_null=["project", "trigger", "status", "created_at"],
    )
    create_index(db, "runs", ["created_at"])
    create_table(
        db, "run_tasks",
        {
            "run_id": str, "task": str, "status": str, "reason": str, "cache_key": str, "attempts": int,
            "started_at": float, "ended_at": float, "error": str, "error_cell": int, "artifact": str,
        },
        pk=("run_id", "task"),
        foreign_keys=[("run_id", "runs", "id")],
        not_null=["status"],
        defaults={"attempts": 0},
    )
    create_table(
        db, "attempts",
        {
            "id": int, "run_id": str, "task": str, "number": int, "status": str, "started_at": float,
            "ended_at": float, "cache_key": str, "artifact": str, "error_kind": str, "error": str,
            "error_cell": int, "log": str, "host": str, "pid": int, "fingerprint": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
        not_null=["run_id", "task", "number", "status"],
    )
    create_index(db, "attempts", ["task", "status"])
    create_index(db, "attempts", ["run_id"])
    # AUTOINCREMENT: ids never reused, so `events_since(last_id)` cursors stay valid after pruning.
    db.conn.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, "
        "run_id TEXT REFERENCES runs(id), task TEXT, kind TEXT NOT NULL, data TEXT)"
    )
    create_index(db, "events", ["run_id"])
    create_table(db, "datasets", {"id": int, "path": str}, pk="id", not_null=["path"])
    create_index(db, "datasets", ["path"], unique=True)
    create_table(
        db, "dataset_versions",
        {"id": int, "dataset_id": int, "hash": str, "size": int, "attempt_id": int, "created_at": float},
        pk="id",
        foreign_keys=[("dataset_id", "datasets", "id"), ("attempt_id", "attempts", "id")],
        not_null=["dataset_id", "hash"],
    )
    create_index(db, "dataset_versions", ["dataset_id", "hash"])
    create_index(db, "dataset_versions", ["attempt_id"])
    create_table(
        db, "lineage",
        {"attempt_id": int, "version_id": int, "direction": str},
        pk=("attempt_id", "version_id", "direction"),
        foreign_keys=[("attempt_id", "attempts", "id"), ("version_id", "dataset_versions", "id")],
    )
    create_index(db, "lineage", ["version_id"])


def _v2_scheduling(db: Database) -> None:
    """Schedules, their slots (one row per schedule and slot: the store's guarantee that a slot runs once),
    files seen by sensors (one row per sensor and path), and the scheduler lease (one row at most)."""
    create_table(
        db, "schedules",
        {
            "name": str, "source": str, "cron": str, "timezone": str, "parameters": str, "only_tasks": str,
            "catchup": str, "max_concurrent": int, "overlap": str, "jobs": int, "paused": int, "since": float,
            "created_at": float, "updated_at": float,
        },
        pk="name",
        not_null=["source", "cron", "timezone", "catchup", "max_concurrent", "overlap", "paused", "since"],
        defaults={"paused": 0},
    )
    # run_id is not a foreign key: pruning old runs must not take the record of which slots ran with it.
    job_columns = {"status": str, "reason": str, "run_id": str, "owner": str, "tries": int, "claimed_at": float,
                   "started_at": float, "ended_at": float}
    create_table(
        db, "schedule_slots",
        {"id": int, "schedule": str, "slot": str, "slot_ts": float, "run_date": str, "trigger": str, **job_columns},
        pk="id",
        not_null=["schedule", "slot", "slot_ts", "run_date", "trigger", "status"],
        defaults={"tries": 0},
    )
    create_index(db, "schedule_slots", ["schedule", "slot"], unique=True)
    create_index(db, "schedule_slots", ["status"])
    create_table(
        db, "sensor_files",
        {"id": int, "sensor": str, "path": str, "size": int, "mtime": float, "trigger": str, **job_columns},
        pk="id",
        not_null=["sensor", "path", "trigger", "status"],
        defaults={"tries": 0},
    )
    create_index(db, "sensor_files", ["sensor", "path"], unique=True)
    create_index(db, "sensor_files", ["status"])
    db.conn.execute(
        "CREATE TABLE scheduler_lease (id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, host TEXT, "
        "pid INTEGER, acquired_at REAL NOT NULL, heartbeat_at REAL NOT NULL)"
    )


def _v3_projects(db: Database, ctx: MigrationContext) -> None:
    """Several projects in one store (a team's central history): a `projects` registry, and a project on every run,
    dataset, event, schedule, slot, sensor file and lease; attempts keep their exception's name and message; runs
    claim the datasets they read and write while they run.

    A v2 store recorded each run's project folder: each folder becomes a project named after it (`-2`, `-3` when
    two folders share a name). Schedules, slots, sensor files and the lease, which v2 did not tie to a project,
    go to the project that opens the store first. Paths inside a project are kept per project; a relative path
    that two projects shared in v2 stays with the project that recorded it first."""
    conn = db.conn
    create_table(db, "projects", {"name": str, "root": str, "created_at": float}, pk="name", not_null=["root", "created_at"])
    roots = [r for (r,) in conn.execute("SELECT project FROM runs GROUP BY project ORDER BY min(created_at)")]
    names: dict[str, str] = {}
    for root in roots:
        base = ctx.name if os.path.normpath(root) == os.path.normpath(ctx.root) else (os.path.basename(root.rstrip("/")) or "project")
        name, n = base, 1
        while name in names.values():
            n += 1
            name = f"{base}-{n}"
        names[root] = name
    for root, name in names.items():
        conn.execute("INSERT INTO projects (name, root, created_at) VALUES (?, ?, ?)", (name, root, time.time()))
        conn.execute("UPDATE runs SET project = ? WHERE project = ?", (name, root))
    create_index(db, "runs", ["project", "created_at"])

    for column in ("ename", "evalue"):
        conn.execute(f"ALTER TABLE attempts ADD COLUMN {column} TEXT")

    conn.execute("ALTER TABLE datasets ADD COLUMN project TEXT NOT NULL DEFAULT ''")  # '' = an absolute path, shared
    conn.execute('DROP INDEX "idx_datasets_path"')
    _split_datasets_by_project(conn, ctx.name)
    create_index(db, "datasets", ["project", "path"], unique=True)

    conn.execute("ALTER TABLE events ADD COLUMN project TEXT")
    conn.execute("UPDATE events SET project = coalesce((SELECT project FROM runs WHERE runs.id = events.run_id), ?)", (ctx.name,))
    create_index(db, "events", ["project", "id"])

    conn.execute("ALTER TABLE schedules RENAME TO schedules_v2")
    create_table(
        db, "schedules",
        {
            "project": str, "name": str, "source": str, "cron": str, "timezone": str, "parameters": str, "only_tasks": str,
            "catchup": str, "max_concurrent": int, "overlap": str, "jobs": int, "paused": int, "since": float,
            "created_at": float, "updated_at": float,
        },
        pk=("project", "name"),
        not_null=["source", "cron", "timezone", "catchup", "max_concurrent", "overlap", "paused", "since"],
        defaults={"paused": 0},
    )
    conn.execute("INSERT INTO schedules SELECT ?, * FROM schedules_v2", (ctx.name,))
    conn.execute("DROP TABLE schedules_v2")
    for table, key, item in (("schedule_slots", "schedule", "slot"), ("sensor_files", "sensor", "path")):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN project TEXT NOT NULL DEFAULT ''")
        conn.execute(f"UPDATE {table} SET project = ?", (ctx.name,))
        conn.execute(f'DROP INDEX "idx_{table}_{key}_{item}"')
        create_index(db, table, ["project", key, item], unique=True)
    conn.execute("DROP TABLE scheduler_lease")
    conn.execute(
        "CREATE TABLE scheduler_lease (project TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT, pid INTEGER, "
        "acquired_at REAL NOT NULL, heartbeat_at REAL NOT NULL)"
    )
    if not names and conn.execute("SELECT count(*) FROM schedules").fetchone()[0]:
        conn.execute("INSERT INTO projects (name, root, created_at) VALUES (?, ?, ?)", (ctx.name, ctx.root, time.time()))

    create_table(
        db, "run_claims",
        {"run_id": str, "project": str, "path": str, "mode": str},
        pk=("run_id", "project", "path", "mode"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    create_index(db, "run_claims", ["path"])


def _v4_operations(db: Database, ctx: MigrationContext) -> None:
    """Operations (issue 13): alerts raised and their deliveries to each target, open failure streaks (one alert per
    task per streak), circuit-breaker state shared by every run of the project, and a schedule's SLA and alert level."""
    create_table(
        db, "alerts",
        {"id": int, "project": str, "created_at": float, "severity": str, "event": str, "key": str, "run_id": str,
         "task": str, "title": str, "body": str, "data": str, "outcome": str},
        pk="id",
        not_null=["project", "created_at", "severity", "event", "title", "outcome"],
    )
    create_index(db, "alerts", ["project", "created_at"])
    create_table(
        db, "alert_deliveries",
        {"id": int, "alert_id": int, "project": str, "target": str, "status": str, "attempts": int, "error": str,
         "owner": str, "created_at": float, "updated_at": float},
        pk="id",
        foreign_keys=[("alert_id", "alerts", "id")],
        not_null=["alert_id", "project", "target", "status", "created_at", "updated_at"],
        defaults={"attempts": 0},
    )
    create_index(db, "alert_deliveries", ["alert_id"])
    create_index(db, "alert_deliveries", ["project", "status"])
    create_table(
        db, "alert_streaks",
        {"project": str, "key": str, "opened_at": float, "run_id": str, "failures": int, "last_at": float},
        pk=("project", "key"),
        not_null=["opened_at", "failures", "last_at"],
    )
    create_table(
        db, "breakers",
        {"project": str, "name": str, "state": str, "failures": str, "opened_at": float, "last_error": str,
         "probe_owner": str, "probe_at": float, "updated_at": float},
        pk=("project", "name"),
        not_null=["state", "failures", "updated_at"],
    )
    for column, kind in (("sla", "REAL"), ("alert", "TEXT")):
        db.conn.execute(f"ALTER TABLE schedules ADD COLUMN {column} {kind}")


def _split_datasets_by_project(conn: Any, default: str) -> None:
    """v2 kept one dataset per relative path, whichever project wrote or read it. Give each project its own: a
    version moves to the project whose attempt wrote it; an external version read by several projects is copied,
    one per project, and each project's reads point at its own copy."""
    linked = conn.execute(
        "SELECT v.dataset_id, v.id, v.attempt_id, r.project, l.attempt_id FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
        "JOIN lineage l ON l.version_id = v.id JOIN attempts a ON a.id = l.attempt_id JOIN runs r ON r.id = a.run_id "
        "WHERE substr(d.path, 1, 1) != '/' ORDER BY v.dataset_id, v.id, l.attempt_id").fetchall()
    writer = {vid: project for _, vid, wrote_by, project, attempt in linked if wrote_by == attempt}
    first: dict[int, str] = {}
    for did, _, _, project, _ in linked:
        first.setdefault(did, project)
    new_ids: dict[tuple[int, str], int] = {}

    def dataset_of(did: int, project: str) -> int:
        if project == first[did]:
            return did
        if (did, project) not in new_ids:
            path = conn.execute("SELECT path FROM datasets WHERE id = ?", (did,)).fetchone()[0]
            new_ids[(did, project)] = conn.execute("INSERT INTO datasets (path, project) VALUES (?, ?)", (path, project)).lastrowid
        return new_ids[(did, project)]

    copies: dict[tuple[int, str], int] = {}
    for did, vid, wrote_by, project, attempt in linked:
        owner = writer.get(vid)
        if owner is not None:  # a version belongs to its writer's project
            if attempt == wrote_by and owner != first[did]:
                conn.execute("UPDATE dataset_versions SET dataset_id = ? WHERE id = ?", (dataset_of(did, owner), vid))
            continue
        if project == first[did]:
            continue
        if (vid, project) not in copies:  # an external version read by another project: that project's own copy
            copies[(vid, project)] = conn.execute(
                "INSERT INTO dataset_versions (dataset_id, hash, size, attempt_id, created_at) "
                "SELECT ?, hash, size, NULL, created_at FROM dataset_versions WHERE id = ?", (dataset_of(did, project), vid)).lastrowid
        conn.execute("UPDATE lineage SET version_id = ? WHERE attempt_id = ? AND version_id = ? AND direction = 'read'",
                     (copies[(vid, project)], attempt, vid))
    for did, project in first.items():
        conn.execute("UPDATE datasets SET project = ? WHERE id = ?", (project, did))
    conn.execute("UPDATE datasets SET project = ? WHERE project = '' AND substr(path, 1, 1) != '/'", (default,))


def _v5_attempt_placement(db: Database) -> None:
    """Where each attempt ran and what it used: the Dask worker's address (host and pid are the machine and process that
    ran it), the kernel's peak resident memory and CPU seconds, and the resources applied (cores, GPU ids, memory limit)."""
    for column, kind in (("worker", "TEXT"), ("peak_rss", "INTEGER"), ("cpu_seconds", "REAL"), ("resources", "TEXT")):
        db.conn.execute(f"ALTER TABLE attempts ADD COLUMN {column} {kind}")


@dataclass(frozen=True)
class MigrationContext:
    """Who is opening the store: a migration that must name a project uses this one."""

    name: str = "default"
    root: str = ""


Migration = Callable[["Database", MigrationContext], None]
def _v6_review_provenance(db: Database, ctx: MigrationContext) -> None:
    """Reviewing runs (issue 15): each run's code version (git commit, dirty tree, notebooks that differ from the
    commit); the In [n] label of a failing cell beside its 0-based index; a running task's cell progress."""
    conn = db.conn
    for column, kind in (("code_commit", "TEXT"), ("code_dirty", "INTEGER"), ("code_changed", "TEXT")):
        conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
    conn.execute("ALTER TABLE attempts ADD COLUMN error_execution_count INTEGER")
    conn.execute("ALTER TABLE run_tasks ADD COLUMN error_execution_count INTEGER")
    conn.execute("ALTER TABLE run_tasks ADD COLUMN progress TEXT")  # JSON {"cell", "cells", "since"} while it runs


def _v7_kernel_starts(db: Database) -> None:
    """How each attempt's kernel started ("fork" from the template, or "spawn") and how many ms it took; and an
    index that finds the newest version of a path without sorting all its versions (a path written 100,000 times
    took 0.3 s to look up)."""
    db.conn.execute("ALTER TABLE attempts ADD COLUMN kernel_start TEXT")
    db.conn.execute("ALTER TABLE attempts ADD COLUMN kernel_start_ms REAL")
    create_index(db, "dataset_versions", ["dataset_id", "id"])


MIGRATIONS: list[Migration] = [lambda db, ctx: _v1_initial(db), lambda db, ctx: _v2_scheduling(db), _v3_projects,
                               _v4_operations, lambda db, ctx: _v5_attempt_placement(db), _v6_review_provenance,
                               lambda db, ctx: _v7_kernel_starts(db)]


def user_version(db: Db) -> int:
    """The schema version stored in the file (0 for a fresh file)."""
    return int(db.scalar("PRAGMA user_version"))


def _check_not_newer(db: Db, version: int, known: int) -> None:
    if version > known:
        raise StoreVersionError(
            f"the nbflow store {db.path} was written by a newer nbflow (schema {version}, this nbflow "
            f"knows {known}). Fix: upgrade nbflow (pip install -U nbflow) or point `store` in nbflow.toml "
            "at another file"
        )


def _check_is_ours(db: Db) -> None:
    """A file at version 0 with tables in it belongs to something else: do not write ours into it."""
    tables = db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
    if tables:
        raise StoreError(
            f"{db.path} is a SQLite database but not an nbflow store (it has tables and no nbflow schema "
            "version). Fix: point `store` in nbflow.toml at another file"
        )


def migrate(db: Db, ctx: MigrationContext | None = None) -> int:
    """Apply pending migrations, one transaction each; return the schema version reached."""
    migrations = MIGRATIONS
    known = len(migrations)
    version = user_version(db)
    _check_not_newer(db, version, known)
    while version < known:
        with db.write() as conn:
            version = user_version(db)  # another process may have migrated while we waited
            _check_not_newer(db, version, known)
            if version >= known:
                break
            if version == 0:
                _check_is_ours(db)
            migrations[version](db.db, ctx or MigrationContext())
            if not conn.in_transaction:
                raise StoreError(f"migration {version + 1} of {db.path} committed on its own; it must not end "
                                 "the transaction (use create_table/create_index from nbflow.store.migrations)")
            conn.execute(f"PRAGMA user_version = {version + 1}")
        version = user_version(db)
    return version
