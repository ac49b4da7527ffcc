"""Pure scheduling logic: cron fields, time zones, DST, month ends, specs and globs, catch-up decisions."""
from __future__ import annotations

import datetime as dt
import pickle
from zoneinfo import ZoneInfo

import pytest

from nbflow.errors import ScheduleError
from nbflow.schedule import cron
from nbflow.schedule.daemon import catchup_plan
from nbflow.schedule.spec import check_glob, config_schedules, schedule_from, sensor_from

from .schedule_fakes import at

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(("expr", "field", "position"), [
    ("61 * * * *", "minute", 1), ("0 25 * * *", "hour", 2), ("0 0 32 * *", "day-of-month", 3),
    ("0 0 * 13 *", "month", 4), ("0 0 * * 8", "day-of-week", 5), ("0 0 * * mon-xyz", "day-of-week", 5),
    ("0 0 * * * 75", "second", 6),
])
def test_invalid_cron_names_the_bad_field(expr, field, position):
    with pytest.raises(ScheduleError) as info:
        cron.check_cron(expr, "nbflow.toml: schedule 'nightly'")
    msg = str(info.value)
    assert f"field {position} ({field})" in msg and "nbflow.toml: schedule 'nightly'" in msg and "Fix:" in msg
    assert info.value.field == "cron"
    assert isinstance(pickle.loads(pickle.dumps(info.value)), ScheduleError)


def test_cron_with_wrong_field_count_or_impossible_date():
    with pytest.raises(ScheduleError, match="has 4 fields"):
        cron.check_cron("0 0 * *", "x")
    with pytest.raises(ScheduleError, match="never fires"):
        cron.check_cron("0 0 30 2 *", "x")
    assert cron.check_cron("  0   2 * * *  ", "x") == "0 2 * * *"
    assert cron.check_cron("@daily", "x") == "@daily"


def test_unknown_time_zone_suggests_close_names():
    with pytest.raises(ScheduleError) as info:
        cron.check_timezone("Europe/Pariss", "nbflow.toml: schedule 'n'")
    assert "unknown time zone 'Europe/Pariss'" in str(info.value) and "'Europe/Paris'" in str(info.value)
    with pytest.raises(ScheduleError, match="did you mean 'America/New_York'"):
        cron.check_timezone("america/new york", "x")
    assert cron.check_timezone("Asia/Tokyo", "x").key == "Asia/Tokyo"


def test_spring_forward_a_0230_slot_fires_once_at_0300():
    fired = cron.slots("30 2 * * *", NY, at("2026-03-06T12:00"), at("2026-03-10T12:00"))
    assert [t.isoformat() for t in fired] == [
        "2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]
    assert [cron.run_date(t) for t in fired][:2] == ["2026-03-07T02:30", "2026-03-08T03:00"]


def test_fall_back_a_fixed_time_fires_once_an_hourly_job_every_real_hour():
    daily = cron.slots("30 1 * * *", NY, at("2026-10-31T12:00"), at("2026-11-02T12:00"))
    assert [cron.slot_key(t) for t in daily] == ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]  # 01:30 EDT only
    hourly = cron.slots("0 * * * *", NY, at("2026-11-01T04:30"), at("2026-11-01T07:30"))
    assert [cron.slot_key(t) for t in hourly] == ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"]
    dates = [cron.run_date(t) for t in hourly]
    assert dates[:2] == ["2026-11-01T01:00-04:00", "2026-11-01T01:00-05:00"]  # ambiguous wall time: offset added
    assert dates[2] == "2026-11-01T02:00" and len(set(dates)) == 3


def test_month_ends_skip_months_without_a_31st():
    fired = cron.slots("0 0 31 * *", dt.timezone.utc, at("2026-01-01T00:00"), at("2026-12-31T23:59"))
    assert [t.month for t in fired] == [1, 3, 5, 7, 8, 10, 12]
    assert cron.run_date(fired[0]) == "2026-01-31"
    last_day = cron.slots("0 6 28-31 * *", dt.timezone.utc, at("2026-02-01T00:00"), at("2026-03-01T00:00"))
    assert [t.day for t in last_day] == [28]  # February 2026 has 28 days


def test_slots_are_after_exclusive_until_inclusive_and_seconds_field_works():
    fired = cron.slots("0 0 * * *", dt.timezone.utc, at("2026-01-01T00:00"), at("2026-01-03T00:00"))
    assert [cron.run_date(t) for t in fired] == ["2026-01-02", "2026-01-03"]
    every2 = cron.slots("* * * * * */2", dt.timezone.utc, at("2026-01-01T00:00"), at("2026-01-01T00:00:07"))
    assert [cron.run_date(t) for t in every2] == ["2026-01-01T00:00:02", "2026-01-01T00:00:04", "2026-01-01T00:00:06"]
    assert cron.run_date(at("2026-01-01T00:01"), seconds=True) == "2026-01-01T00:01:00"
    assert cron.run_date(at("2026-01-02T00:00"), seconds=True) == "2026-01-02T00:00:00"
    assert cron.has_seconds("* * * * * */2") and not cron.has_seconds("0 2 * * *") and not cron.has_seconds("@daily")
    assert cron.next_fires("0 2 * * *", NY, at("2026-01-01T00:00"), 2)[1].isoformat() == "2026-01-02T02:00:00-05:00"


def test_catchup_plan_by_policy():
    now = at("2026-01-13T00:00:30")
    due = [at("2026-01-11T00:00"), at("2026-01-12T00:00"), at("2026-01-13T00:00")]
    assert [r for _, r in catchup_plan(due, "all", now, 60)] == [None, None, None]
    latest = catchup_plan(due, "latest", now, 60)
    assert [r is None for _, r in latest] == [False, False, True] and "catchup = \"latest\"" in latest[0][1]
    assert [r is None for _, r in catchup_plan(due, "none", now, 60)] == [False, False, True]  # the last is on time
    assert [r is None for _, r in catchup_plan(due, "none", now + dt.timedelta(hours=1), 60)] == [False, False, False]


def test_schedule_spec_validation_names_schedule_and_field():
    spec = schedule_from("nightly", {"cron": "0 2 * * *", "timezone": "Europe/Paris", "only": "a, b", "parameters": {"x": 1}},
                         "nbflow.toml")
    assert spec.only == ("a", "b") and spec.catchup == "latest" and spec.overlap == "queue" and spec.trigger == "schedule:nightly"
    cases = [({"cron": "0 2 * * *", "catchup": "some"}, "catchup"), ({"cron": "0 2 * * *", "max_concurrent": 0}, "max_concurrent"),
             ({"cron": "0 2 * * *", "colour": "red"}, "colour"), ({}, "cron"),
             ({"cron": "0 2 * * *", "catchup": "all", "overlap": "skip"}, "overlap")]
    for table, field in cases:
        with pytest.raises(ScheduleError) as info:
            schedule_from("nightly", table, "nbflow.toml")
        assert info.value.field == field and "schedule 'nightly'" in str(info.value) and "Fix:" in str(info.value)
    with pytest.raises(ScheduleError, match="not a usable name"):
        schedule_from("@x", {"cron": "0 2 * * *"}, "nbflow.toml")
    assert [s.name for s in config_schedules({"b": {"cron": "@daily"}, "a": {"cron": "@hourly"}}, "f")] == ["a", "b"]


def test_globs_outside_the_project_are_rejected(tmp_path):
    root = tmp_path / "proj"
    (root / "incoming").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    assert check_glob("incoming/*.csv", str(root), "s") == "incoming/*.csv"
    for bad in ("../secret/*.csv", "/etc/*", "incoming/../../secret/*", "link/*.csv", "~/x/*"):
        with pytest.raises(ScheduleError) as info:
            check_glob(bad, str(root), "nbflow.toml: sensor 'in'")
        assert "reaches outside the project folder" in str(info.value) and info.value.field == "glob"
    s = sensor_from("in", {"glob": "incoming/**/*.csv", "stable_seconds": 0.5}, "nbflow.toml", str(root))
    assert s.parameter == "input_path" and s.trigger == "sensor:in"
    with pytest.raises(ScheduleError, match="not a Python name"):
        sensor_from("in", {"glob": "x/*", "parameter": "input-path"}, "nbflow.toml", str(root))
