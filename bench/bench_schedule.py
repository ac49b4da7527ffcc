"""Benchmark, not a test: how late a real `nbflow scheduler` fires a cron slot and reacts to a finished file.

    .venv/bin/python bench/bench_schedule.py [--samples 7]

Starts the scheduler as its own process on a temp project (one tiny notebook), with a schedule firing every
2 seconds and a sensor on incoming/*.csv (default stable_seconds = 1.0), drops a file every 3 seconds, stops the
scheduler with SIGTERM, then reads the latencies from the store:
  cron:   slot time -> slot claimed, and -> run recorded               goal <= 1 s
  sensor: file complete (last write) -> claimed, and -> run recorded   goal <= 2 s
Baseline, in the same run: a bare asyncio loop sleeping until each 2-second boundary (the timer floor).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """jobs = 1

[schedules.bench]
cron = "* * * * * */2"
overlap = "skip"
only = ["noop"]

[sensors.drop]
glob = "incoming/*.csv"
only = ["noop"]
"""


def notebook(path: Path) -> None:
    cell = {"cell_type": "code", "id": "c1", "metadata": {}, "source": "pass", "outputs": [], "execution_count": None}
    nb = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


async def baseline(samples: int) -> list[float]:
    """asyncio.sleep until the next 2-second boundary, then measure how late we woke."""
    out = []
    for _ in range(samples):
        target = (int(time.time()) // 2 + 1) * 2
        await asyncio.sleep(target - time.time())
        out.append(time.time() - target)
    return out


def measure(samples: int) -> dict[str, list[float]]:
    root = Path(tempfile.mkdtemp(prefix="nbflow-bench-schedule-"))
    notebook(root / "noop.ipynb")
    (root / "incoming").mkdir()
    (root / "nbflow.toml").write_text(CONFIG)
    log = open(root / "scheduler.log", "w")
    daemon = subprocess.Popen([sys.executable, "-m", "nbflow", "scheduler"], cwd=root, stdout=log, stderr=subprocess.STDOUT)
    db = root / ".nbflow" / "nbflow.db"
    try:
        deadline = time.time() + 60
        while not db.exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        for i in range(samples):
            with open(root / "incoming" / f"f{i}.csv", "w") as f:
                f.write("a,b\n" + "1,2\n" * 1000)
            time.sleep(3.0)
        base = asyncio.run(baseline(samples))
        time.sleep(2.0)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(120)
        log.close()
    conn = sqlite3.connect(db)
    slots = conn.execute("SELECT s.slot_ts, s.claimed_at, r.created_at FROM schedule_slots s LEFT JOIN runs r ON r.id = s.run_id "
                         "WHERE s.schedule = 'bench' AND s.status != 'skipped' ORDER BY s.slot_ts").fetchall()
    files = conn.execute("SELECT f.mtime, f.claimed_at, r.created_at FROM sensor_files f LEFT JOIN runs r ON r.id = f.run_id "
                         "WHERE f.sensor = 'drop' ORDER BY f.id").fetchall()
    conn.close()
    shutil.rmtree(root, ignore_errors=True)
    return {
        "cron: slot -> claimed": [c - s for s, c, _ in slots],
        "cron: slot -> run recorded": [r - s for s, _, r in slots if r],
        "baseline: asyncio sleep to slot": base,
        "sensor: file complete -> claimed": [c - m for m, c, _ in files],
        "sensor: file complete -> run recorded": [r - m for m, _, r in files if r],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    results = measure(args.samples)
    goals = {"cron": 1.0, "sensor": 2.0, "baseline": None}
    print(f"{'measure':<40}{'n':>4}{'median s':>11}{'max s':>9}{'goal s':>9}  ok")
    for name, values in results.items():
        goal = goals[name.split(":")[0]]
        if not values:
            print(f"{name:<40}{0:>4}{'-':>11}{'-':>9}{'-':>9}  no samples")
            continue
        med, worst = statistics.median(values), max(values)
        ok = "-" if goal is None else ("yes" if med <= goal else "NO")
        print(f"{name:<40}{len(values):>4}{med:>11.3f}{worst:>9.3f}{goal if goal else '-':>9}  {ok}")
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus; sensor stable_seconds = 1.0, poll every 0.25 s)")


if __name__ == "__main__":
    main()
