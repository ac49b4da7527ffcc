"""Build tests/stores/v2_two_projects.db: a store written by nbflow's schema-v2 release (commit 0cc4ae9), shared by
two projects, for the migration test. Run it with that release on the path, not with the current code:

    git worktree add /tmp/nbflow-v2 0cc4ae9
    PYTHONPATH=/tmp/nbflow-v2 .venv/bin/python tests/stores/make_v2_store.py

Both projects write `data/out.csv` (a path relative to each project) and `shared.csv` outside both; alpha also has
a schedule and a recorded slot. v2 mixed them: `runs`, `lineage` and the cache saw both projects' rows."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def notebook(path: Path, cells: list[tuple[str, list[str]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "metadata": {"tags": tags}, "source": src, "outputs": [], "execution_count": None}
                  for src, tags in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 4}))


def main() -> None:
    from nbflow import Project
    from nbflow.store import Store

    work = Path(tempfile.mkdtemp())
    store = work / "shared.db"
    for name, value in (("alpha", 1), ("beta", 2)):
        root = work / name
        notebook(root / "make.ipynb", [(f"v = {value}", ["parameters"]),
                                       ("import os\nos.makedirs('data', exist_ok=True)\n"
                                        "open('data/out.csv', 'w').write(f'x\\n{v}\\n')\n"
                                        f"open('{work}/shared-{name}.csv', 'w').write('{name}')",
                                        ["writes:data/out.csv", f"writes:{work}/shared-{name}.csv"])])
        (root / "nbflow.toml").write_text(f'store = "{store}"\n')
        with Project(root) as project:
            summary = project.run()
        assert summary.ok, summary
    with Store(str(store)) as s:
        assert s.schema_version == 2
        s.add_schedule({"name": "nightly", "source": "cli", "cron": "0 2 * * *", "timezone": "UTC", "parameters": {},
                        "only_tasks": [], "catchup": "latest", "max_concurrent": 1, "overlap": "queue", "jobs": None}, 1.0)
        s.claim_slot("nightly", "2026-01-01T02:00:00Z", 1767232800.0, "2026-01-01T02:00", "schedule", "skipped",
                     "scheduler:h:1:x", now=2.0, reason="made for the migration test")
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the one file that is copied
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    out = HERE / "v2_two_projects.db"
    shutil.copy(store, out)
    (HERE / "v2_two_projects.json").write_text(json.dumps({"made_in": str(work)}, indent=1) + "\n")
    print(f"wrote {out} from {work}", file=sys.stderr)
    os.environ.pop("NBFLOW_RUN_ID", None)


if __name__ == "__main__":
    main()
