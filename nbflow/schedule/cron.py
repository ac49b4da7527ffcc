"""Cron expressions and time zones: validation that names the bad field, and the slots between two instants.

Pure functions over aware datetimes; nothing here reads the clock.
"""
from __future__ import annotations

import datetime as dt
import difflib
import zoneinfo
from functools import cache

from croniter import CroniterError, croniter

from ..errors import ScheduleError

# croniter's field order: the classic five, then an optional second (6th) and year (7th).
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week", "second", "year")
RANGES = {"minute": "0-59", "hour": "0-23", "day-of-month": "1-31", "month": "1-12 or jan-dec",
          "day-of-week": "0-6 or sun-sat (0 and 7 are Sunday)", "second": "0-59", "year": "1970-2099"}
ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def check_cron(expr: str, where: str, field: str = "cron") -> str:
    """The expression with its whitespace normalised; ScheduleError naming the bad cron field otherwise."""
    if not isinstance(expr, str) or not expr.strip():
        raise ScheduleError(where, field, f"{expr!r} is not a cron expression", "write five fields, e.g. '0 2 * * *' (02:00 every day)")
    text = " ".join(expr.split())
    if text.startswith("@"):
        if text not in ALIASES:
            raise ScheduleError(where, field, f"unknown cron alias '{text}'", f"use one of {', '.join(ALIASES)} or five fields")
        return text
    parts = text.split(" ")
    if not 5 <= len(parts) <= 7:
        raise ScheduleError(where, field, f"'{text}' has {len(parts)} fields; cron needs 5 (minute hour day-of-month month "
                            "day-of-week), optionally a 6th (second) and a 7th (year)", "write e.g. '0 2 * * *'")
    for i, value in enumerate(parts):
        probe = ["*"] * len(parts)
        probe[i] = value
        try:
            croniter(" ".join(probe))
        except (CroniterError, ValueError, KeyError) as e:
            name = FIELDS[i]
            why = str(e).rsplit("]", 1)[-1].strip(" ,.") or "not acceptable"
            raise ScheduleError(where, field, f"'{text}': field {i + 1} ({name}) '{value}' is not valid: {why}",
                                f"{name} takes {RANGES[name]}, a list (1,15), a range (1-5) or a step (*/10)") from None
    try:
        croniter(text).get_next(dt.datetime)
    except (CroniterError, ValueError) as e:
        raise ScheduleError(where, field, f"'{text}' never fires ({e})",
                            "check that day-of-month exists in the month you chose (there is no 30 February)") from None
    return text


@cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def check_timezone(name: str, where: str, field: str = "timezone") -> zoneinfo.ZoneInfo:
    """The ZoneInfo for an IANA name; ScheduleError suggesting close names otherwise."""
    if not isinstance(name, str) or not name:
        raise ScheduleError(where, field, f"{name!r} is not a time zone name", "use an IANA name such as 'UTC' or 'Europe/Paris'")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        by_lower = {z.lower(): z for z in _zones()}
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
        hint = (f"did you mean {', '.join(repr(by_lower[c]) for c in close)}?" if close
                else "use an IANA name such as 'UTC' or 'Europe/Paris'")
        raise ScheduleError(where, field, f"unknown time zone '{name}'", hint) from None


def _repeats_wall_time(expr: str) -> bool:
    """True when the hour field names specific hours: such a job runs once on a fall-back day, as cron does."""
    if expr.startswith("@"):
        return expr != "@hourly"
    return expr.split(" ")[1] != "*"


def slots(expr: str, tz: dt.tzinfo, after: dt.datetime, until: dt.datetime, limit: int = 100_000) -> list[dt.datetime]:
    """Fire times t with after < t <= until, as aware datetimes in `tz`, oldest first.

    DST (croniter's behaviour, kept): a wall time that does not exist on a spring-forward day fires once, at
    the first valid time after the gap (02:30 becomes 03:00). On a fall-back day croniter fires a repeated
    wall time twice (01:30 EDT and 01:30 EST); we keep the second one only when the hour field is `*`
    (an hourly job runs every real hour), otherwise it fires once, at the first occurrence.
    """
    out: list[dt.datetime] = []
    it = croniter(expr, after.astimezone(tz))
    dedupe = _repeats_wall_time(expr)
    while len(out) < limit:
        t: dt.datetime = it.get_next(dt.datetime)
        if t > until:
            break
        if t <= after:
            continue
        if dedupe and out and t.replace(tzinfo=None) == out[-1].replace(tzinfo=None):
            continue
        out.append(t)
    return out


def next_fires(expr: str, tz: dt.tzinfo, after: dt.datetime, n: int = 1) -> list[dt.datetime]:
    """The next `n` fire times after `after`."""
    out: list[dt.datetime] = []
    it = croniter(expr, after.astimezone(tz))
    dedupe = _repeats_wall_time(expr)
    while len(out) < n:
        t: dt.datetime = it.get_next(dt.datetime)
        if dedupe and out and t.replace(tzinfo=None) == out[-1].replace(tzinfo=None):
            continue
        out.append(t)
    return out


def slot_key(slot: dt.datetime) -> str:
    """The slot as stored (UNIQUE per schedule): UTC, second precision, e.g. 2026-03-08T07:30:00Z."""
    return slot.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def has_seconds(expr: str) -> bool:
    """True when the expression has croniter's seconds field (6 or 7 fields)."""
    return not expr.startswith("@") and len(expr.split()) >= 6


def run_date(slot: dt.datetime, seconds: bool = False) -> str:
    """The `run_date` a slot passes: its local date at midnight, else local date and time, with seconds when the
    cron has a seconds field (and the UTC offset when the wall time is ambiguous, i.e. on a fall-back day, so two
    slots never share one)."""
    if (slot.hour, slot.minute, slot.second) == (0, 0, 0) and not seconds:
        return slot.date().isoformat()
    text = slot.strftime("%Y-%m-%dT%H:%M:%S" if seconds or slot.second else "%Y-%m-%dT%H:%M")
    other = slot.replace(fold=1 - slot.fold)
    if other.utcoffset() != slot.utcoffset():
        text += slot.strftime("%z")[:3] + ":" + slot.strftime("%z")[3:]
    return text


_ALIAS_FIELDS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                 "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _words(fields: list[str]) -> str | None:
    """cron-descriptor's English for croniter's field order (it reads a 6th and 7th field as second-first and year)."""
    from cron_descriptor import FormatError, MissingFieldError, Options, WrongArgumentError, get_description

    if len(fields) >= 6:  # croniter: m h dom mon dow [s [y]]; cron-descriptor: [s] m h dom mon dow [y]
        fields = [fields[5], *fields[:5], *fields[6:]]
    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(get_description(" ".join(fields), options))
    except (FormatError, MissingFieldError, WrongArgumentError, ValueError, IndexError, KeyError):
        return None


def describe(expr: str) -> str | None:
    """The cron expression in words ("At 02:30", "Every 20 seconds"), None when it cannot be described."""
    text = " ".join(expr.split())
    return _words(_ALIAS_FIELDS.get(text, text).split(" "))


def seconds_warning(expr: str) -> str | None:
    """A warning when a 6-field cron's seconds field (the 6th, in nbflow's order) is `*`: it fires every second of each
    matching minute, which is rarely meant; most often the first field was meant as seconds (Quartz/Spring order)."""
    fields = " ".join(expr.split()).split(" ")
    if len(fields) < 6 or fields[5] != "*":
        return None
    meant = [*fields[1:6], fields[0], *fields[6:]]
    actual, other = describe(" ".join(fields)), describe(" ".join(meant))
    return (f"'{' '.join(fields)}' has a 6th field, which nbflow reads as seconds (minute hour day-of-month month day-of-week "
            f"second): '*' there fires every second of each matching minute ({actual or 'many runs in a row'}). "
            f"Fix: if the first field was meant as seconds (the Quartz/Spring order), write '{' '.join(meant)}'"
            + (f" ({other})" if other else "") + "; for once a minute, drop the 6th field")
