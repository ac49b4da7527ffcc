"""The Store: every read and write of nbflow's state goes through these methods."""
from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, NotFoundError
from ..liveness import HOST
from ..paths import is_url
from ..records import AttemptRecord, ClaimRecord, FileRecord, RunRecord, TaskRecord, record_fields
from ..states import AttemptState, ErrorKind, RunState, TaskState
from . import migrations
from .db import Db, wal_bug_warning
from .ops import OpsStore
from .schedules import ScheduleStore

if TYPE_CHECKING:
    from typing_extensions import Self

    from ..claims import Claim

ClaimCheck = Callable[[list[ClaimRecord]], None]  # raises when a held claim conflicts with the new run's

PLACEMENT_FIELDS = ("host", "worker", "pid", "peak_rss", "cpu_seconds", "resources", "kernel_start", "kernel_start_ms")
TASK_FIELDS = ("reason", "cache_key", "attempts", "started_at", "ended_at", "error", "error_cell", "artifact",
               "error_execution_count")
ABANDONED = "the runner stopped while this attempt ran"
DEFAULT_PROJECT = "default"
_RUN_COLUMNS = ", ".join(record_fields(RunRecord))
_TASK_COLUMNS = ", ".join(record_fields(TaskRecord))
_ATTEMPT_COLUMNS = ", ".join(f"a.{c}" for c in record_fields(AttemptRecord))

_VERSION_SQL = """
SELECT v.id AS version_id, d.path, v.hash, v.size, v.created_at, v.attempt_id,
       a.run_id, a.task, a.number, a.status, a.started_at, a.ended_at, a.fingerprint,
       r.code_commit, r.code_dirty, r.code_changed
FROM dataset_versions v
JOIN datasets d ON d.id = v.dataset_id
LEFT JOIN attempts a ON a.id = v.attempt_id
LEFT JOIN runs r ON r.id = a.run_id
"""
_PRODUCER_KEYS = ("run_id", "task", "number", "status", "started_at", "ended_at")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _run(row: Sequence[Any]) -> RunRecord:
    values = dict(zip(record_fields(RunRecord), row))
    values["parameters"] = _loads(values["parameters"]) or {}
    values["selection"] = _loads(values["selection"]) or {}
    values["status"] = RunState(values["status"])
    values["code_dirty"] = None if values["code_dirty"] is None else bool(values["code_dirty"])
    changed = _loads(values["code_changed"])
    values["code_changed"] = None if changed is None else tuple(changed)
    return RunRecord(**values)


def _task(row: Sequence[Any]) -> TaskRecord:
    values = dict(zip(record_fields(TaskRecord), row))
    values["status"] = TaskState(values["status"])
    values["attempts"] = values["attempts"] or 0
    values["progress"] = _loads(values["progress"])
    return TaskRecord(**values)


def _attempt(row: Sequence[Any]) -> AttemptRecord:
    values = dict(zip(record_fields(AttemptRecord), row))
    values["status"] = AttemptState(values["status"])
    values["error_kind"] = ErrorKind(values["error_kind"]) if values["error_kind"] else None
    values["resources"] = _loads(values["resources"])
    return AttemptRecord(**values)


def _version(row: dict[str, Any]) -> dict[str, Any]:
    """A dataset version row with its producing attempt folded into `producer` (None if external)."""
    producer = None
    if row["attempt_id"] is not None:
        fingerprint = _loads(row["fingerprint"]) or {}
        producer = {"attempt": row["attempt_id"], **{k: row[k] for k in _PRODUCER_KEYS},
                    "parameters": fingerprint.get("parameters"),
                    "code": {"commit": row["code_commit"], "dirty": None if row["code_dirty"] is None else bool(row["code_dirty"]),
                             "changed": _loads(row["code_changed"]), "code_hash": fingerprint.get("code")}}
    return {
        "version_id": row["version_id"], "path": row["path"], "hash": row["hash"], "size": row["size"],
        "created_at": row["created_at"], "producer": producer,
    }


class Store(ScheduleStore, OpsStore):
    """nbflow's SQLite store: runs, task states, attempts, events and dataset lineage, of one project.

    Several projects may share one store file (`store = "/shared/nbflow.db"`): every query here is limited to
    `project`, and a project's name belongs to one folder (`root`), registered by its first write.
    """

    sqlite_version: str = sqlite3.sqlite_version

    def __init__(self, path: str, project: str = DEFAULT_PROJECT, root: str | None = None) -> None:
        """Open (creating the file and its folder if needed) and migrate to the current schema."""
        self.path = path
        self.project = project
        self.root = root
        self._db = Db(path)
        try:
            self.schema_version = migrations.migrate(self._db, migrations.MigrationContext(project, root or ""))
        except BaseException:
            self._db.close()
            raise
        self._write = self._db.write
        self._host = HOST
        self._registered = False
        if root is not None:
            self._check_owner()

    def _check_owner(self) -> None:
        """Refuse to show or change another folder's project that has the same name."""
        found = self._db.scalar("SELECT root FROM projects WHERE name = ?", [self.project])
        if found is not None and os.path.normpath(found) != os.path.normpath(self.root or "") and os.path.isdir(found):
            self._db.close()
            raise ConflictError(
                f"the store {self.path} already holds a project named '{self.project}' in {found}; this one is "
                f"{self.root}. Fix: give this project its own name (`name = \"...\"` in its nbflow.toml), or its own store")

    @staticmethod
    def wal_bug_warning() -> str | None:
        """A warning string when this Python's SQLite has the WAL-reset bug, else None."""
        return wal_bug_warning(sqlite3.sqlite_version)

    def close(self) -> None:
        """Close the connection; the Store cannot be used afterwards."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    def _event(self, conn: sqlite3.Connection, kind: str, run_id: str | None, task: str | None,
               data: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO events (ts, run_id, task, kind, data, project) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), run_id, task, kind, _dumps(data), self.project),
        )

    def _register(self, conn: sqlite3.Connection) -> None:
        """Inside a write: this project's name is ours (first write), or was registered by this same folder.

        A folder that no longer exists gives its name up (the project moved)."""
        if self._registered or self.root is None:
            return
        found = conn.execute("SELECT root FROM projects WHERE name = ?", (self.project,)).fetchone()
        if found is None:
            conn.execute("INSERT INTO projects (name, root, created_at) VALUES (?, ?, ?)", (self.project, self.root, time.time()))
        elif os.path.normpath(found[0]) != os.path.normpath(self.root):
            if os.path.isdir(found[0]):
                raise ConflictError(
                    f"the store {self.path} already holds a project named '{self.project}' in {found[0]}; this one is "
                    f"{self.root}. Fix: give this project its own name (`name = \"...\"` in its nbflow.toml), or its own store")
            conn.execute("UPDATE projects SET root = ? WHERE name = ?", (self.root, self.project))
        self._registered = True

    def projects(self) -> list[dict[str, Any]]:
        """Every project recorded in this store file: name, folder, and how many runs."""
        return self._db.rows("SELECT p.name, p.root, p.created_at, (SELECT count(*) FROM runs r WHERE r.project = p.name) AS runs "
                             "FROM projects p ORDER BY p.name")

    # runs

    def create_run(self, run_id: str, *, trigger: str, logical_date: str, parameters: dict[str, Any],
                   selection: dict[str, Any], tasks: list[str], schedule: str | None = None,
                   resumed_from: str | None = None, claims: Sequence[Claim] = (), check: ClaimCheck | None = None,
                   code: dict[str, Any] | None = None) -> None:
        """Record a new run (status 'running') and its tasks (all 'pending') in one transaction, with the datasets it
        claims; `check` sees the claims live runs hold, inside the same transaction, and raises to refuse the run.
        `code`: the project's code version, {"commit", "dirty", "changed"} (None outside git)."""
        now = time.time()
        code = code or {}
        try:
            with self._write() as conn:
                self._register(conn)
                if check is not None:
                    check(self._held(conn))
                conn.execute(
                    "INSERT INTO runs (id, project, trigger, logical_date, parameters, selection, status, "
                    "created_at, started_at, ended_at, host, pid, heartbeat_at, schedule, resumed_from, code_commit, "
                    "code_dirty, code_changed) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, self.project, trigger, logical_date, _dumps(parameters), _dumps(selection), now, now,
                     self._host, os.getpid(), now, schedule, resumed_from, code.get("commit"),
                     None if code.get("dirty") is None else int(code["dirty"]),
                     None if code.get("changed") is None else _dumps(list(code["changed"]))),
                )
                conn.executemany(
                    "INSERT INTO run_tasks (run_id, task, status, attempts) VALUES (?, ?, ?, 0)",
                    [(run_id, task, TaskState.PENDING) for task in tasks],
                )
                self._claim(conn, run_id, claims)
                self._event(conn, "run_started", run_id, None,
                            {"trigger": trigger, "logical_date": logical_date, "tasks": list(tasks)})
        except sqlite3.IntegrityError as err:
            raise ConflictError(
                f"run id {run_id!r} is already in the store {self.path} ({err}). "
                "Fix: start the run with a new id"
            ) from err

    def _held(self, conn: sqlite3.Connection) -> list[ClaimRecord]:
        return [ClaimRecord(*row) for row in conn.execute(
            "SELECT c.run_id, c.project, c.path, c.mode, r.host, r.pid, r.started_at, r.heartbeat_at FROM run_claims c "
            "JOIN runs r ON r.id = c.run_id WHERE r.status = 'running' ORDER BY r.created_at, c.rowid")]

    def held_claims(self) -> list[ClaimRecord]:
        """Claims of every run recorded running, of every project in the store (absolute paths are shared)."""
        with self._db.lock:
            return self._held(self._db.conn)

    @staticmethod
    def _claim(conn: sqlite3.Connection, run_id: str, claims: Sequence[Claim]) -> None:
        conn.execute("DELETE FROM run_claims WHERE run_id = ?", (run_id,))
        conn.executemany("INSERT OR IGNORE INTO run_claims (run_id, project, path, mode) VALUES (?, ?, ?, ?)",
                         [(run_id, c.project, c.path, c.mode) for c in claims])

    def finish_run(self, run_id: str, status: RunState) -> None:
        """Set the run's final status and end time; its claims are let go. An attempt still `running` then was cut off
        between being recorded and reaching the executor (a cancel in that window): it ends cancelled with the run."""
        status = RunState(status)
        now = time.time()
        with self._write() as conn:
            conn.execute("DELETE FROM run_claims WHERE run_id = ?", (run_id,))
            conn.execute("UPDATE attempts SET status = ?, ended_at = ?, error_kind = ?, error = ? "
                         "WHERE run_id = ? AND status = ?",
                         (AttemptState.CANCELLED, now, ErrorKind.CANCELLED, "the run ended before this attempt could run",
                          run_id, AttemptState.RUNNING))
            cur = conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, heartbeat_at = ? WHERE id = ?",
                (status, now, now, run_id),
            )
            self._need(cur.rowcount, run_id)
            self._event(conn, "run_finished", run_id, None, {"status": status})

    def heartbeat(self, run_id: str) -> None:
        """Mark the run's runner as alive now."""
        with self._write() as conn:
            cur = conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), run_id))
            self._need(cur.rowcount, run_id)

    def _need(self, rowcount: int, run_id: str, task: str | None = None) -> None:
        if rowcount:
            return
        if task is None:
            raise NotFoundError(f"no run {run_id!r} in {self.path}. Fix: run `nbflow runs` to list run ids")
        raise NotFoundError(
            f"run {run_id!r} has no task {task!r} in {self.path}. Fix: run `nbflow show {run_id}` to list its tasks"
        )

    def get_run(self, run_id: str) -> RunRecord:
        """One run of this project by id, or by a unique prefix or suffix of its id (`20261202T0652`, `8d1b48`)."""
        row = self._db.tuple_row(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ? AND project = ?", [run_id, self.project])
        if row is None and run_id:
            found = self._db.tuples(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE project = ? AND (substr(id, 1, length(?)) = ? OR "
                "substr(id, -length(?)) = ?) ORDER BY created_at DESC LIMIT 6", [self.project, run_id, run_id, run_id, run_id])
            if len(found) > 1:
                ids = ", ".join(r[0] for r in found[:5])
                raise NotFoundError(
                    f"run id {run_id!r} matches several runs ({ids}{', ...' if len(found) > 5 else ''}) as a prefix or "
                    "a suffix. Fix: give more characters of the id (`nbflow runs` lists them)"
                )
            row = found[0] if found else None
        if row is None:
            self._need(0, run_id)
        assert row is not None
        return _run(row)

    def list_runs(self, limit: int = 20, offset: int = 0, status: RunState | None = None,
                  all_projects: bool = False, include_noop: bool = True) -> list[RunRecord]:
        """Runs, newest first (of this project, or of every project in the store); without `include_noop`, runs
        that succeeded without running anything (every task up to date) are left out."""
        where, params = self._runs_where(status, all_projects, include_noop)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.tuples(
            f"SELECT {_RUN_COLUMNS} FROM runs {clause} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_run(r) for r in rows]

    def count_runs(self, status: RunState | None = None, all_projects: bool = False, include_noop: bool = True) -> int:
        """How many runs this project has (of one status, if given; without no-op runs unless `include_noop`)."""
        where, params = self._runs_where(status, all_projects, include_noop)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return int(self._db.scalar(f"SELECT count(*) FROM runs {clause}", params))

    def _runs_where(self, status: RunState | None, all_projects: bool, include_noop: bool) -> tuple[list[str], list[Any]]:
        where, params = (["project = ?"], [self.project]) if not all_projects else ([], [])
        if status:
            where.append("status = ?")
            params.append(status)
        if not include_noop:  # a no-op run: succeeded with no attempt (every task was up to date)
            where.append("NOT (status = 'succeeded' AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = runs.id))")
        return where, params

    def latest_run_id(self, task: str | None = None) -> str | None:
        """The id of this project's newest run (in which `task` had an attempt, if given), or None when there is none."""
        if task is not None:
            found: str | None = self._db.scalar(
                "SELECT r.id FROM runs r JOIN attempts a ON a.run_id = r.id WHERE r.project = ? AND a.task = ? "
                "ORDER BY r.created_at DESC, r.rowid DESC LIMIT 1", [self.project, task])
            return found
        found = self._db.scalar("SELECT id FROM runs WHERE project = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
                                [self.project])
        return found

    def run_tasks(self, run_id: str) -> list[TaskRecord]:
        """The run's tasks, in the order the run listed them."""
        return [_task(r) for r in self._db.tuples(f"SELECT {_TASK_COLUMNS} FROM run_tasks WHERE run_id = ? ORDER BY rowid",
                                                  [run_id])]

    def set_task_state(self, run_id: str, task: str, status: TaskState, **fields: Any) -> None:
        """Update one task of a run (status plus any of TASK_FIELDS) and record a 'task_state' event."""
        status = TaskState(status)
        unknown = set(fields) - set(TASK_FIELDS)
        if unknown:
            raise TypeError(f"set_task_state got unknown fields {sorted(unknown)}; allowed: {TASK_FIELDS}")
        names = ["status", *fields]
        sets = ", ".join(f"{name} = ?" for name in names)
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE run_tasks SET {sets} WHERE run_id = ? AND task = ?",
                (status, *fields.values(), run_id, task),
            )
            self._need(cur.rowcount, run_id, task)
            self._event(conn, "task_state", run_id, task, {"status": status, **fields})

    def set_progress(self, run_id: str, task: str, progress: dict[str, Any]) -> None:
        """A running task's current cell ({"cell": 1-based, "cells": n, "since": its start}), with a 'task_progress' event."""
        with self._write() as conn:
            conn.execute("UPDATE run_tasks SET progress = ? WHERE run_id = ? AND task = ?", (_dumps(progress), run_id, task))
            self._event(conn, "task_progress", run_id, task, progress)

    def reset_tasks(self, run_id: str, tasks: list[str], status: RunState = RunState.RUNNING, *,
                    claims: Sequence[Claim] = (), check: ClaimCheck | None = None) -> None:
        """For resume: the run is this process's again (status, pid, host, heartbeat), `tasks` pending, and it holds
        `claims` (after `check`, as for a new run)."""
        status = RunState(status)
        now = time.time()
        with self._write() as conn:
            if check is not None:
                check([c for c in self._held(conn) if c.run_id != run_id])
            self._claim(conn, run_id, claims)
            cur = conn.execute(
                "UPDATE runs SET status = ?, ended_at = NULL, host = ?, pid = ?, heartbeat_at = ? WHERE id = ?",
                (status, self._host, os.getpid(), now, run_id),
            )
            self._need(cur.rowcount, run_id)
            conn.executemany(
                "UPDATE run_tasks SET status = ?, reason = NULL, started_at = NULL, ended_at = NULL, error = NULL, "
                "error_cell = NULL, error_execution_count = NULL, progress = NULL WHERE run_id = ? AND task = ?",
                [(TaskState.PENDING, run_id, task) for task in tasks],
            )
            conn.executemany(  # tasks the run did not list before (the pipeline changed since)
                "INSERT OR IGNORE INTO run_tasks (run_id, task, status, attempts) VALUES (?, ?, ?, 0)",
                [(run_id, task, TaskState.PENDING) for task in tasks],
            )
            self._event(conn, "run_resumed", run_id, None, {"status": status, "tasks": list(tasks)})

    # attempts

    def start_attempt(self, run_id: str, task: str, number: int, cache_key: str | None, artifact: str | None,
                      pid: int | None = None, started_at: float | None = None) -> int:
        """Record attempt `number` (1-based) of a task as running (since `started_at`, default now); return its id
        (`artifact` None: no notebook)."""
        now = started_at or time.time()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE run_tasks SET status = ?, attempts = ?, started_at = coalesce(started_at, ?), progress = NULL, "
                "ended_at = NULL, cache_key = coalesce(?, cache_key), artifact = ? WHERE run_id = ? AND task = ?",
                (TaskState.RUNNING, number, now, cache_key, artifact, run_id, task),
            )
            self._need(cur.rowcount, run_id, task)
            cur = conn.execute(
                "INSERT INTO attempts (run_id, task, number, status, started_at, cache_key, artifact, host, pid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, task, number, AttemptState.RUNNING, now, cache_key, artifact, self._host, pid),
            )
            attempt_id = cur.lastrowid
            assert attempt_id is not None
            self._event(conn, "attempt_started", run_id, task, {"attempt": attempt_id, "number": number})
        return attempt_id

    def finish_attempt(self, attempt_id: int, status: AttemptState, *, error_kind: ErrorKind | None = None,
                       error: str | None = None, error_cell: int | None = None, ename: str | None = None,
                       evalue: str | None = None, log: str | None = None,
                       reads: Sequence[FileRecord] = (), writes: Sequence[FileRecord] = (),
                       fingerprint: str | None = None, placement: Mapping[str, Any] | None = None,
                       ended_at: float | None = None, error_execution_count: int | None = None) -> None:
        """End an attempt (at `ended_at`, default now) and record what it read and wrote (path, sha256, size), in one
        transaction; a succeeded attempt also marks its task succeeded.

        `fingerprint` is the JSON of what the cache key was computed from, kept to explain later cache misses.
        `placement`: where it ran and what it used (host, worker, pid, peak_rss, cpu_seconds, resources), and how its
        kernel started (kernel_start: "fork" or "spawn"; kernel_start_ms: how long that took); a field left out keeps
        what start_attempt recorded.
        """
        where = {k: v for k, v in (placement or {}).items() if k in PLACEMENT_FIELDS and v is not None}
        if "resources" in where:
            where["resources"] = _dumps(where["resources"])
        with self._write() as conn:
            found = conn.execute("SELECT run_id, task, number FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
            if found is None:
                raise NotFoundError(f"no attempt {attempt_id} in {self.path}")
            run_id, task, number = found
            conn.execute(
                "UPDATE attempts SET status = ?, ended_at = ?, error_kind = ?, error = ?, error_cell = ?, ename = ?, "
                "evalue = ?, log = ?, fingerprint = ?, error_execution_count = ?" + "".join(f", {k} = ?" for k in where)
                + " WHERE id = ?",
                (AttemptState(status), ended_at or time.time(), error_kind, error, error_cell, ename, evalue, log, fingerprint,
                 error_execution_count, *where.values(), attempt_id),
            )
            if status == AttemptState.SUCCEEDED:  # its task succeeded with it, in this transaction: a runner killed
                # right after cannot leave a finished task to be run again by resume
                conn.execute(
                    "UPDATE run_tasks SET status = ?, attempts = ?, artifact = (SELECT artifact FROM attempts WHERE id = ?), "
                    "ended_at = ?, error = NULL, error_cell = NULL, error_execution_count = NULL WHERE run_id = ? AND task = ?",
                    (TaskState.SUCCEEDED, number, attempt_id, ended_at or time.time(), run_id, task),
                )
            # Reads first: a file this attempt reads and rewrites links to the version before its write.
            for path, digest, size in reads:
                self._link(conn, attempt_id, "read", self._read_version(conn, path, digest, size))
            for path, digest, size in writes:
                dataset_id = self._dataset_id(conn, path)
                cur = conn.execute(
                    "INSERT INTO dataset_versions (dataset_id, hash, size, attempt_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (dataset_id, digest, size, attempt_id, time.time()),
                )
                assert cur.lastrowid is not None
                self._link(conn, attempt_id, "write", cur.lastrowid)
            self._event(conn, "attempt_finished", run_id, task,
                        {"attempt": attempt_id, "number": number, "status": status, "error_kind": error_kind})

    def _dataset_key(self, path: str) -> tuple[str, str]:
        """A dataset's (project, path): paths inside a project are the project's; an absolute path is shared."""
        return ("" if os.path.isabs(path) or is_url(path) else self.project), path

    def _dataset_id(self, conn: sqlite3.Connection, path: str) -> int:
        key = self._dataset_key(path)
        conn.execute("INSERT OR IGNORE INTO datasets (project, path) VALUES (?, ?)", key)
        return int(conn.execute("SELECT id FROM datasets WHERE project = ? AND path = ?", key).fetchone()[0])

    def _read_version(self, conn: sqlite3.Connection, path: str, digest: str, size: int) -> int:
        """The newest recorded version of `path` with this hash, or a new external one."""
        dataset_id = self._dataset_id(conn, path)
        found = conn.execute(
            "SELECT id FROM dataset_versions WHERE dataset_id = ? AND hash = ? ORDER BY id DESC LIMIT 1",
            (dataset_id, digest),
        ).fetchone()
        if found:
            return int(found[0])
        cur = conn.execute(
            "INSERT INTO dataset_versions (dataset_id, hash, size, attempt_id, created_at) VALUES (?, ?, ?, NULL, ?)",
            (dataset_id, digest, size, time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    @staticmethod
    def _link(conn: sqlite3.Connection, attempt_id: int, direction: str, version_id: int) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO lineage (attempt_id, version_id, direction) VALUES (?, ?, ?)",
            (attempt_id, version_id, direction),
        )

    def _attempts(self, where: str, params: Sequence[Any], order: str = "a.id", limit: int | None = None) -> list[AttemptRecord]:
        """Attempts of this project's runs matching `where` (over `a`, the attempts table)."""
        sql = (f"SELECT {_ATTEMPT_COLUMNS} FROM attempts a JOIN runs r ON r.id = a.run_id WHERE r.project = ? AND {where} "
               f"ORDER BY {order}" + (f" LIMIT {int(limit)}" if limit else ""))
        return [_attempt(r) for r in self._db.tuples(sql, [self.project, *params])]

    def attempts(self, run_id: str, task: str | None = None) -> list[AttemptRecord]:
        """Attempts of a run (of one task, if given), oldest first."""
        if task is None:
            return self._attempts("a.run_id = ?", [run_id])
        return self._attempts("a.run_id = ? AND a.task = ?", [run_id, task])

    def get_attempt(self, attempt_id: int) -> AttemptRecord:
        """One attempt by id."""
        found = self._attempts("a.id = ?", [attempt_id])
        if not found:
            raise NotFoundError(f"no attempt {attempt_id} in {self.path}. Fix: run `nbflow show RUN` to list attempts")
        return found[0]

    def last_success(self, task: str, cache_key: str) -> AttemptRecord | None:
        """The newest succeeded attempt of `task` with this cache key."""
        found = self._attempts("a.task = ? AND a.status = ? AND a.cache_key = ?", [task, AttemptState.SUCCEEDED, cache_key],
                               order="a.id DESC", limit=1)
        return found[0] if found else None

    def attempt_writes(self, attempt_id: int) -> list[FileRecord]:
        """What an attempt wrote: (path, sha256, size) of each file."""
        return [(v["path"], v["hash"], v["size"]) for v in self._io(attempt_id, "write")]

    def last_success_any(self, task: str) -> AttemptRecord | None:
        """The newest succeeded attempt of `task`, whatever its cache key."""
        found = self._attempts("a.task = ? AND a.status = ?", [task, AttemptState.SUCCEEDED], order="a.id DESC", limit=1)
        return found[0] if found else None

    def last_fingerprint(self, task: str) -> dict[str, Any] | None:
        """The decoded fingerprint of the newest succeeded attempt of `task`, to say why a cache key changed."""
        found = self._attempts("a.task = ? AND a.status = ? AND a.fingerprint IS NOT NULL", [task, AttemptState.SUCCEEDED],
                               order="a.id DESC", limit=1)
        return _loads(found[0].fingerprint) if found else None

    def attempt_durations(self, task: str, limit: int = 20, before: float | None = None) -> list[float]:
        """Seconds taken by the task's last `limit` succeeded attempts (started before `before`, if given), newest first."""
        rows = self._db.tuples(
            "SELECT a.ended_at - a.started_at FROM attempts a JOIN runs r ON r.id = a.run_id WHERE r.project = ? AND a.task = ? "
            "AND a.status = ? AND a.ended_at IS NOT NULL AND a.started_at < ? ORDER BY a.id DESC LIMIT ?",
            [self.project, task, AttemptState.SUCCEEDED, before if before is not None else float("inf"), limit])
        return [float(r[0]) for r in rows]

    def mark_abandoned(self, run_id: str) -> int:
        """Crash recovery: fail the run's attempts still 'running', set running/queued tasks back to pending."""
        now = time.time()
        with self._write() as conn:
            abandoned = conn.execute(
                "SELECT id, task FROM attempts WHERE run_id = ? AND status = ?", (run_id, AttemptState.RUNNING)
            ).fetchall()
            conn.execute(
                "UPDATE attempts SET status = ?, error_kind = ?, error = ?, ended_at = ? WHERE run_id = ? AND status = ?",
                (AttemptState.FAILED, ErrorKind.ABANDONED, ABANDONED, now, run_id, AttemptState.RUNNING),
            )
            conn.execute(
                "UPDATE run_tasks SET status = ? WHERE run_id = ? AND status IN (?, ?)",
                (TaskState.PENDING, run_id, TaskState.RUNNING, TaskState.QUEUED),
            )
            if abandoned:
                self._event(conn, "attempts_abandoned", run_id, None,
                            {"attempts": [a for a, _ in abandoned], "tasks": sorted({t for _, t in abandoned})})
        return len(abandoned)

    # events

    def events_since(self, last_id: int = 0, run_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """This project's events with id > last_id, oldest first, data decoded."""
        if run_id is None:
            rows = self._db.rows("SELECT id, ts, run_id, task, kind, data FROM events WHERE project = ? AND id > ? ORDER BY id LIMIT ?",
                                 [self.project, last_id, limit])
        else:
            rows = self._db.rows("SELECT id, ts, run_id, task, kind, data FROM events WHERE project = ? AND id > ? AND run_id = ? "
                                 "ORDER BY id LIMIT ?", [self.project, last_id, run_id, limit])
        for row in rows:
            row["data"] = _loads(row["data"])
        return rows

    def last_event_id(self) -> int:
        """The id of this project's newest event (0 when none), to follow events from now on."""
        return int(self._db.scalar("SELECT coalesce(max(id), 0) FROM events WHERE project = ?", [self.project]))

    # lineage

    def dataset_versions(self, path: str) -> list[dict[str, Any]]:
        """Versions of one file, newest first, each with its producer (None for external input)."""
        rows = self._db.rows(f"{_VERSION_SQL} WHERE d.project = ? AND d.path = ? ORDER BY v.id DESC", list(self._dataset_key(path)))
        return [_version(r) for r in rows]

    def _get_version(self, version_id: int) -> dict[str, Any]:
        row = self._db.row(f"{_VERSION_SQL} WHERE v.id = ?", [version_id])
        if row is None:
            raise NotFoundError(f"no dataset version {version_id} in {self.path}")
        return _version(row)

    def _io(self, attempt_id: int, direction: str) -> list[dict[str, Any]]:
        rows = self._db.rows(
            f"{_VERSION_SQL} JOIN lineage l ON l.version_id = v.id "
            "WHERE l.attempt_id = ? AND l.direction = ? ORDER BY d.path, v.id",
            [attempt_id, direction],
        )
        return [_version(r) for r in rows]

    def version_inputs(self, version_id: int) -> list[dict[str, Any]]:
        """The versions read by the attempt that produced this version ([] for external input)."""
        producer = self._get_version(version_id)["producer"]
        return [] if producer is None else self._io(producer["attempt"], "read")

    def version_consumers(self, version_id: int) -> list[dict[str, Any]]:
        """Attempts that read this version: attempt id, run_id, task, number, status, times."""
        return self._db.rows(
            "SELECT a.id AS attempt, a.run_id, a.task, a.number, a.status, a.started_at, a.ended_at "
            "FROM lineage l JOIN attempts a ON a.id = l.attempt_id "
            "WHERE l.version_id = ? AND l.direction = 'read' ORDER BY a.id",
            [version_id],
        )

    def attempt_io(self, attempt_id: int) -> dict[str, list[dict[str, Any]]]:
        """What one attempt read and wrote, as dataset versions."""
        return {"reads": self._io(attempt_id, "read"), "writes": self._io(attempt_id, "write")}

    def _tree(self, version: dict[str, Any], depth: int, seen: set[int]) -> dict[str, Any]:
        """A version with its producer's inputs as subtrees; a version met twice is not expanded again."""
        node = {k: version[k] for k in ("path", "hash", "size", "version_id", "producer")}
        node["inputs"] = []
        if version["version_id"] in seen:
            node["repeated"] = True
            return node
        seen.add(version["version_id"])
        producer = version["producer"]
        if producer is not None:
            inputs = self._io(producer["attempt"], "read")
            if depth <= 0:
                node["truncated"] = bool(inputs)
            else:
                node["inputs"] = [self._tree(v, depth - 1, seen) for v in inputs]
        return node

    def lineage(self, path: str, depth: int = 20) -> dict[str, Any] | None:
        """The newest version of `path` as a tree of what it was made from; None if never recorded."""
        versions = self._db.rows(f"{_VERSION_SQL} WHERE d.project = ? AND d.path = ? ORDER BY v.id DESC LIMIT 1",
                                 list(self._dataset_key(path)))
        if not versions:
            return None
        return self._tree(_version(versions[0]), depth, set())

    def task_lineage(self, task: str) -> dict[str, Any]:
        """The task's last succeeded attempt: lineage trees of what it read, and consumers of what it wrote."""
        attempt = self.last_success_any(task)
        if attempt is None:
            raise NotFoundError(
                f"task {task!r} has no succeeded attempt in {self.path}. Fix: run it (`nbflow run --only {task}`) "
                "or check the name with `nbflow runs`"
            )
        seen: set[int] = set()
        reads = [self._tree(v, 20, seen) for v in self._io(attempt.id, "read")]
        writes = [{**v, "consumers": self.version_consumers(v["version_id"])} for v in self._io(attempt.id, "write")]
        return {"task": task, "attempt": attempt, "reads": reads, "writes": writes}

    # reads for the panel (issue 14): autocomplete, duration trends, filtered history

    def dataset_paths(self, prefix: str = "", limit: int = 50) -> list[str]:
        """Paths this project's lineage knows (and shared absolute ones) starting with `prefix`, sorted."""
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return [r[0] for r in self._db.tuples(
            "SELECT path FROM datasets WHERE project IN (?, '') AND path LIKE ? ESCAPE '\\' ORDER BY path LIMIT ?",
            [self.project, like, limit])]

    def task_attempts(self, task: str, limit: int = 30) -> list[AttemptRecord]:
        """The newest attempts of one task across runs, newest first."""
        return self._attempts("a.task = ?", [task], order="a.id DESC", limit=limit)

    def find_runs(self, limit: int = 20, offset: int = 0, *, statuses: Sequence[str] = (), trigger: str = "",
                  ran_only: bool = False, include_noop: bool = True) -> tuple[list[RunRecord], int]:
        """Runs newest first with their total, filtered by status, trigger prefix (`schedule:` matches every schedule),
        and whether any task of the run was attempted (`ran_only` hides runs where everything was up to date; without
        `include_noop`, only succeeded ones, as `runs()` does)."""
        where, params = ["project = ?"], [self.project]
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if trigger:
            where.append("substr(trigger, 1, length(?)) = ?")
            params.extend([trigger, trigger])
        if ran_only:
            where.append("(status = 'running' OR EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = runs.id))")
        if not include_noop:
            where.extend(self._runs_where(None, False, False)[0][1:])  # the no-op rule of runs(), after its project clause
        clause = " AND ".join(where)
        rows = self._db.tuples(f"SELECT {_RUN_COLUMNS} FROM runs WHERE {clause} ORDER BY created_at DESC, rowid DESC "
                               "LIMIT ? OFFSET ?", [*params, limit, offset])
        total = int(self._db.scalar(f"SELECT count(*) FROM runs WHERE {clause}", params))
        return [_run(r) for r in rows], total

    def run_events(self, run_id: str, kinds: Sequence[str] = ("task_state",)) -> list[dict[str, Any]]:
        """One run's events of these kinds, oldest first, data decoded (the Timeline's queued times)."""
        rows = self._db.rows(f"SELECT id, ts, task, kind, data FROM events WHERE project = ? AND run_id = ? AND kind IN "
                             f"({', '.join('?' for _ in kinds)}) ORDER BY id", [self.project, run_id, *kinds])
        for row in rows:
            row["data"] = _loads(row["data"])
        return rows
