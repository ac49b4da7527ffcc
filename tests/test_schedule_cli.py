"""`nbflow schedule ...`, `nbflow scheduler` and `nbflow backfill` as commands, and the Project API behind them."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from click.testing import CliRunner

from nbflow import Project
from nbflow.cli import main

from .schedule_fakes import at

CONFIG = """
[schedules.nightly]
cron = "0 2 * * *"
timezone = "Europe/Paris"
parameters = { region = "eu" }
catchup = "all"

[sensors.incoming]
glob = "incoming/*.csv"
parameter = "csv_path"
"""


def _cli(tmp_path, *args: str):
    """Invoke `nbflow ARGS` in-process, with -C tmp_path after the (sub)command name."""
    n = 2 if args[0] == "schedule" else 1
    return CliRunner().invoke(main, [*args[:n], "-C", str(tmp_path), *args[n:]])


def test_config_schedules_and_sensors_are_listed_without_writing_the_store(tmp_path):
    (tmp_path / "nbflow.toml").write_text(CONFIG)
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "a.csv").write_text("1\n")
    with Project(tmp_path) as project:
        [row] = project.schedules(now=at("2026-01-10T12:00"))
        assert (row["name"], row["source"], row["paused"], row["catchup"]) == ("nightly", "config", False, "all")
        assert row["next_fires"] == ["2026-01-11T02:00:00+01:00", "2026-01-12T02:00:00+01:00", "2026-01-13T02:00:00+01:00"]
        assert row["parameters"] == {"region": "eu"} and row["last_slot"] is None
        [sensor] = project.sensors()
        assert sensor["parameter"] == "csv_path" and sensor["pending"] == [{"path": "incoming/a.csv", "size": 2}]
        assert sensor["files"] == []
        assert project.store.schedule_rows() == []  # reading wrote nothing
        assert project.scheduler_status() == {"running": False, "holder": None}


def test_schedule_add_list_pause_resume_remove(tmp_path):
    (tmp_path / "nbflow.toml").write_text(CONFIG)
    added = _cli(tmp_path, "schedule", "add", "hourly", "--cron", "0 * * * *", "--tz", "Asia/Tokyo", "-p", "n=3",
                 "--only", "train", "--overlap", "skip")
    assert added.exit_code == 0, added.output
    assert "added schedule hourly: next fire" in added.output and "+09:00" in added.output
    listed = _cli(tmp_path, "schedule", "list")
    assert listed.exit_code == 0 and "nightly" in listed.output and "hourly" in listed.output and "not running" in listed.output
    assert "incoming" in listed.output
    data = json.loads(_cli(tmp_path, "schedule", "list", "--json").output)
    by_name = {s["name"]: s for s in data["schedules"]}
    assert by_name["hourly"]["source"] == "cli" and by_name["hourly"]["parameters"] == {"n": 3}
    assert by_name["hourly"]["only"] == ["train"] and by_name["hourly"]["overlap"] == "skip"
    assert by_name["nightly"]["source"] == "config"

    assert _cli(tmp_path, "schedule", "pause", "nightly").exit_code == 0  # a config schedule can be paused
    data = json.loads(_cli(tmp_path, "schedule", "list", "--json").output)
    nightly = next(s for s in data["schedules"] if s["name"] == "nightly")
    assert nightly["paused"] and nightly["next_fire"] is None
    assert _cli(tmp_path, "schedule", "resume", "nightly").exit_code == 0
    assert "paused" not in _cli(tmp_path, "schedule", "list").output

    removed = _cli(tmp_path, "schedule", "remove", "hourly")
    assert removed.exit_code == 0 and "removed schedule hourly" in removed.output
    assert "hourly" not in _cli(tmp_path, "schedule", "list").output
    assert _cli(tmp_path, "schedule", "slots").output.strip() == "no slots recorded yet"


def test_schedule_errors_exit_2_with_the_field_and_the_fix(tmp_path):
    (tmp_path / "nbflow.toml").write_text(CONFIG)
    config_owned = _cli(tmp_path, "schedule", "remove", "nightly")
    assert config_owned.exit_code == 2 and "declared in" in config_owned.output and "[schedules.nightly]" in config_owned.output
    taken = _cli(tmp_path, "schedule", "add", "nightly", "--cron", "0 1 * * *")
    assert taken.exit_code == 2 and "declared in" in taken.output
    assert _cli(tmp_path, "schedule", "add", "x", "--cron", "0 1 * * *").exit_code == 0
    dup = _cli(tmp_path, "schedule", "add", "x", "--cron", "0 1 * * *")
    assert dup.exit_code == 2 and "already exists" in dup.output
    tz = _cli(tmp_path, "schedule", "add", "y", "--cron", "0 1 * * *", "--tz", "Europe/Berln")
    assert tz.exit_code == 2 and "'Europe/Berlin'" in tz.output
    missing = _cli(tmp_path, "schedule", "pause", "nope")
    assert missing.exit_code == 2 and "no schedule 'nope'" in missing.output
    unknown = _cli(tmp_path, "backfill", "--start", "2026-01-01", "--end", "2026-01-02", "--schedule", "nope")
    assert unknown.exit_code == 2 and "no schedule 'nope'" in unknown.output and "nightly" in unknown.output

    bad = subprocess.run([sys.executable, "-m", "nbflow", "schedule", "add", "z", "--cron", "0 0 * * 8"], cwd=tmp_path,
                         capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "300"})
    assert bad.returncode == 2 and "field 5 (day-of-week) '8'" in bad.stderr and "Traceback" not in bad.stderr

    (tmp_path / "nbflow.toml").write_text('[sensors.leak]\nglob = "../elsewhere/*.csv"\n')
    outside = _cli(tmp_path, "schedule", "list")
    assert outside.exit_code == 2 and "sensor 'leak'" in outside.output and "outside the project" in outside.output



def test_scheduler_no_standby_refuses_while_another_holds_the_store(tmp_path):
    with Project(tmp_path) as project:
        me = f"scheduler:{socket.gethostname()}:{os.getpid()}:aaaaaa"
        assert project.store.acquire_lease(me, socket.gethostname(), os.getpid(), time.time(), 15, lambda h: False)[0]
        assert project.scheduler_status()["running"]
    refused = _cli(tmp_path, "scheduler", "--no-standby")
    assert refused.exit_code == 2
    assert f"pid {os.getpid()}" in refused.output and "without --no-standby" in refused.output


def test_every_schedule_subcommand_has_help_and_is_in_the_readme():
    from .conftest import REPO

    readme = (REPO / "README.md").read_text()
    group = main.commands["schedule"]
    assert sorted(group.commands) == ["add", "list", "pause", "remove", "resume", "slots"]  # type: ignore[attr-defined]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert (command.help or "").strip(), f"`nbflow schedule {name}` has no help text"
        assert f"nbflow schedule {name}" in readme, f"`nbflow schedule {name}` is not documented in README.md"
    for name in ("scheduler", "backfill"):
        assert f"nbflow {name}" in readme


def test_schedules_declared_in_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.nbflow.schedules.nightly]\ncron = "0 2 * * 1-5"\ntimezone = "Asia/Tokyo"\n')
    with Project(tmp_path) as project:
        [row] = project.schedules(now=at("2026-01-09T12:00"))  # a Friday, 21:00 in Tokyo
        assert row["next_fire"] == "2026-01-12T02:00:00+09:00"  # Monday
    (tmp_path / "pyproject.toml").write_text('[tool.nbflow.schedules.nightly]\ncron = "0 2 * * 1-5"\ntimezone = "Asia/Tokio"\n')
    bad = _cli(tmp_path, "schedule", "list")
    assert bad.exit_code == 2 and "pyproject.toml: schedule 'nightly': field 'timezone'" in bad.output and "'Asia/Tokyo'" in bad.output
