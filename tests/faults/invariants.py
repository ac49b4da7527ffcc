"""What must hold in a store after any crash and resume, as SQL: each check returns the rows that break it."""
from __future__ import annotations

import sqlite3
from pathlib import Path

CHECKS = {
    "an attempt still 'running' in a run that is not": (
        "SELECT a.id, a.run_id, a.task FROM attempts a JOIN runs r ON r.id = a.run_id "
        "WHERE a.status = 'running' AND r.status != 'running'"),
    "a task row whose attempt count is not its newest attempt's number": (
        "SELECT t.run_id, t.task, t.attempts FROM run_tasks t WHERE t.attempts != "
        "coalesce((SELECT max(number) FROM attempts a WHERE a.run_id = t.run_id AND a.task = t.task), t.attempts)"),
    "attempt numbers of a task in a run that are not 1..n": (
        "SELECT run_id, task FROM attempts GROUP BY run_id, task HAVING min(number) != 1 OR max(number) != count(*)"),
    "a task succeeded more than once in one run": (
        "SELECT run_id, task, count(*) FROM attempts WHERE status = 'succeeded' GROUP BY run_id, task HAVING count(*) > 1"),
    "a succeeded task without its succeeded attempt": (
        "SELECT t.run_id, t.task FROM run_tasks t WHERE t.status = 'succeeded' AND NOT EXISTS "
        "(SELECT 1 FROM attempts a WHERE a.run_id = t.run_id AND a.task = t.task AND a.status = 'succeeded')"),
    "a succeeded run with a task that is not done": (
        "SELECT t.run_id, t.task, t.status FROM run_tasks t JOIN runs r ON r.id = t.run_id "
        "WHERE r.status = 'succeeded' AND t.status NOT IN ('succeeded', 'skipped')"),
    "an output version written by an attempt that did not succeed": (
        "SELECT v.id, a.status FROM dataset_versions v JOIN attempts a ON a.id = v.attempt_id WHERE a.status != 'succeeded'"),
    "a lineage edge to a missing attempt or version": (
        "SELECT l.attempt_id, l.version_id FROM lineage l LEFT JOIN attempts a ON a.id = l.attempt_id "
        "LEFT JOIN dataset_versions v ON v.id = l.version_id WHERE a.id IS NULL OR v.id IS NULL"),
    "a claim of a finished run": (
        "SELECT c.run_id FROM run_claims c JOIN runs r ON r.id = c.run_id WHERE r.status != 'running'"),
}


def broken(store: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every invariant that fails, with the rows that break it; {} when the store is consistent (or not made yet)."""
    if not store.exists():
        return {}
    conn = sqlite3.connect(store)
    try:
        migrated = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'run_claims'").fetchone()[0]
        found = {name: conn.execute(sql).fetchall() for name, sql in CHECKS.items()} if migrated else {}
        found["PRAGMA integrity_check"] = [r for r in conn.execute("PRAGMA integrity_check") if r != ("ok",)]
        found["PRAGMA foreign_key_check"] = conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()
    return {name: rows for name, rows in found.items() if rows}
