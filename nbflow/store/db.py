"""One SQLite connection with nbflow's pragmas, a lock, and BEGIN IMMEDIATE write transactions.

A deferred BEGIN that reads then writes fails at once with SQLITE_BUSY when another process wrote in
between (the busy timeout does not help), so every write transaction here starts with BEGIN IMMEDIATE,
and sqlite-utils' own write helpers (plain BEGIN, or `with conn:` that commits early) are never used.
"""
from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import StoreError, StoreGoneError

if TYPE_CHECKING:
    import sqlite_utils

BUSY_TIMEOUT_S = 60
WAL_BUG_RANGE = ((3, 7, 0), (3, 51, 2))  # sqlite.org/wal.html#walresetbug, fixed in 3.51.3


def wal_bug_warning(version: str = sqlite3.sqlite_version) -> str | None:
    """A warning when this SQLite has the WAL-reset bug, else None."""
    try:
        parts = tuple(int(p) for p in version.split(".")[:3])
    except ValueError:
        return None
    if not WAL_BUG_RANGE[0] <= parts <= WAL_BUG_RANGE[1]:
        return None
    return (
        f"SQLite {version} (linked by Python's sqlite3) has the WAL-reset bug "
        "(sqlite.org/wal.html#walresetbug): rarely, a WAL database written or checkpointed by several "
        "processes at once can be corrupted. Fix: use a Python whose sqlite3 links SQLite 3.51.3 or newer, "
        "and back up .nbflow/nbflow.db if several runs, the scheduler and Jupyter write it at the same time"
    )


def _is_locked(err: sqlite3.Error) -> bool:
    return "locked" in str(err) or "busy" in str(err)


def _open_error(path: str, err: sqlite3.Error) -> StoreError:
    return StoreError(
        f"cannot open the nbflow store {path}: {err}. Fix: if this file is not an nbflow store, point "
        "`store` in nbflow.toml at another file (or move this one away, and nbflow creates a fresh store)"
    )


def connect(path: str) -> sqlite3.Connection:
    """Open `path` with WAL, synchronous=NORMAL, a 60 s busy timeout and foreign keys on."""
    if path != ":memory:":
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"cannot create the folder {parent} for the nbflow store {path}: {err}. "
                "Fix: point `store` in nbflow.toml at a writable location"
            ) from err
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    except sqlite3.Error as err:
        raise _open_error(path, err) from err
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        _set_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as err:
        conn.close()
        raise _open_error(path, err) from err
    return conn


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL; retry while another process holds the lock that the switch needs."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as err:
            if not _is_locked(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Db:
    """A store's connection: serialised by a lock, so one Store can be shared by threads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = connect(path)
        self.lock = threading.RLock()
        self.inode = None if path == ":memory:" else os.stat(path).st_ino

    def check_file(self) -> None:
        """StoreError when the store file was deleted or replaced since it was opened: SQLite would go on writing
        to the unlinked file, and everything recorded from then on would be lost without a word."""
        if self.inode is None:
            return
        try:
            same = os.stat(self.path).st_ino == self.inode
        except OSError:
            same = False
        if not same:
            raise StoreGoneError(f"the nbflow store {self.path} was deleted or replaced while this process was using it; "
                             "nothing more can be recorded in it. Fix: restore the file (or let the next run create a "
                             "new store), then start the run again")

    @functools.cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, for migrations; imported only then, and without pandas and numpy
        when they are not loaded yet: sqlite-utils imports both to map their types, which migrations never use, and
        that cost a new project's first run ~0.3 s (sqlite-utils then maps plain Python types only, in this process)."""
        from ..lightimport import without

        with without("pandas", "numpy"):
            import sqlite_utils

        return sqlite_utils.Database(self.conn, execute_plugins=False)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception."""
        with self.lock:
            if self.conn.in_transaction:  # nested: join the outer transaction
                yield self.conn
                return
            self.check_file()
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as err:
                if not _is_locked(err):
                    raise
                raise StoreError(
                    f"the nbflow store {self.path} stayed locked by another process for over "
                    f"{BUSY_TIMEOUT_S} s. Fix: check for a hung nbflow process holding it, then retry"
                ) from err
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """All rows of a query, as dicts, read under the lock."""
        with self.lock:
            cursor = self.conn.execute(sql, list(params))
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row)) for row in cursor]

    def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query, as tuples in the order selected (for building records)."""
        with self.lock:
            return list(self.conn.execute(sql, list(params)))

    def tuple_row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query as a tuple, or None."""
        with self.lock:
            found: tuple[Any, ...] | None = self.conn.execute(sql, list(params)).fetchone()
        return found

    def row(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of a query, or None."""
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        with self.lock:
            first = self.conn.execute(sql, list(params)).fetchone()
        return None if first is None else first[0]

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()
