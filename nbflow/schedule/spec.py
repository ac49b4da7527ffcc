"""Schedules and sensors as validated values, read from nbflow.toml tables, CLI options or store rows."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import ScheduleError
from ..ops.settings import ALERT_LEVELS, parse_duration
from . import cron

CATCHUP = ("all", "latest", "none")
OVERLAP = ("queue", "skip")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SCHEDULE_FIELDS = {"cron", "timezone", "parameters", "only", "catchup", "max_concurrent", "overlap", "jobs", "sla", "alert"}
SENSOR_FIELDS = {"glob", "parameter", "stable_seconds", "parameters", "only", "max_concurrent", "jobs"}
DEFAULT_TIMEZONE = "UTC"
DEFAULT_STABLE_SECONDS = 1.0


@dataclass(frozen=True)
class ScheduleSpec:
    """A named cron schedule: when it fires, what each run gets, and what happens to missed or overlapping slots."""

    name: str
    cron: str
    timezone: str = DEFAULT_TIMEZONE
    parameters: Mapping[str, Any] = field(default_factory=dict)
    only: tuple[str, ...] = ()
    catchup: str = "latest"  # after downtime: run all missed slots, the latest only, or none
    max_concurrent: int = 1
    overlap: str = "queue"  # a slot due while max_concurrent runs are active: queue it or skip it (recorded)
    jobs: int | None = None  # tasks at once within a run (default: the project's `jobs`)
    source: str = "config"  # "config" (nbflow.toml) or "cli" (nbflow schedule add)
    sla: float | None = None  # seconds after its slot by which a run must have finished (warning at risk, critical missed)
    alert: str | None = None  # severity of its runs' failure alerts (critical, warning, info) or "off"

    @property
    def tz(self) -> Any:
        return cron.check_timezone(self.timezone, self.name)

    @property
    def trigger(self) -> str:
        return f"schedule:{self.name}"


@dataclass(frozen=True)
class SensorSpec:
    """A glob under the project: each new file, once stable, triggers one run with its path as a parameter."""

    name: str
    glob: str
    parameter: str = "input_path"
    stable_seconds: float = DEFAULT_STABLE_SECONDS
    parameters: Mapping[str, Any] = field(default_factory=dict)
    only: tuple[str, ...] = ()
    max_concurrent: int = 1  # files beyond this wait (queued); a file is never skipped
    jobs: int | None = None

    @property
    def trigger(self) -> str:
        return f"sensor:{self.name}"


def check_name(name: str, where: str, kind: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise ScheduleError(where, kind, f"{name!r} is not a usable name",
                            "use letters, digits, '_', '.' or '-', starting with a letter or digit (e.g. 'nightly')")
    return name


def _choice(value: Any, choices: Iterable[str], where: str, field_name: str) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ScheduleError(where, field_name, f"{value!r} is not one of {', '.join(choices)}", f"write {field_name} = \"{choices[0]}\"")
    return str(value)


def _positive_int(value: Any, where: str, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ScheduleError(where, field_name, f"{value!r} is not a whole number >= 1", f"write {field_name} = 1")
    return value


def _only(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ScheduleError(where, "only", f"{value!r} is not a list of task names", 'write only = ["train", "report"]')
    return tuple(n.strip() for v in value for n in v.split(",") if n.strip())


def _table(value: Any, where: str, field_name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ScheduleError(where, field_name, f"{value!r} is not a table", f"write [{field_name}] with key = value lines")
    return dict(value)


def schedule_from(name: str, table: Mapping[str, Any], where: str, source: str = "config") -> ScheduleSpec:
    """Validate one schedule; `where` names the file (or `nbflow schedule add`) in errors."""
    here = f"{where}: schedule '{name}'"
    check_name(name, where, "schedule name")
    unknown = set(table) - SCHEDULE_FIELDS
    if unknown:
        raise ScheduleError(here, sorted(unknown)[0], "unknown field", f"use one of: {', '.join(sorted(SCHEDULE_FIELDS))}")
    if "cron" not in table:
        raise ScheduleError(here, "cron", "missing", "add e.g. cron = \"0 2 * * *\" (02:00 every day)")
    timezone = table.get("timezone", DEFAULT_TIMEZONE)
    cron.check_timezone(timezone, here)
    spec = ScheduleSpec(
        name=name,
        cron=cron.check_cron(table["cron"], here),
        timezone=timezone,
        parameters=_table(table.get("parameters", {}), here, "parameters"),
        only=_only(table.get("only", []), here),
        catchup=_choice(table.get("catchup", "latest"), CATCHUP, here, "catchup"),
        max_concurrent=_positive_int(table.get("max_concurrent", 1), here, "max_concurrent"),
        overlap=_choice(table.get("overlap", "queue"), OVERLAP, here, "overlap"),
        jobs=None if table.get("jobs") is None else _positive_int(table["jobs"], here, "jobs"),
        source=source,
        sla=_sla(table.get("sla"), here),
        alert=None if table.get("alert") is None else _choice(table["alert"], ALERT_LEVELS, here, "alert"),
    )
    if spec.catchup == "all" and spec.overlap == "skip":
        raise ScheduleError(here, "overlap", "catchup = \"all\" with overlap = \"skip\" would skip the missed slots it is asked "
                            "to run (they come due together)", "use overlap = \"queue\", or catchup = \"latest\"")
    return spec


def _sla(value: Any, where: str) -> float | None:
    if value is None:
        return None
    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        raise ScheduleError(where, "sla", f"{value!r} is not a duration", 'write e.g. sla = "45m" (s, m, h or d)')
    return seconds


def sensor_from(name: str, table: Mapping[str, Any], where: str, root: str) -> SensorSpec:
    """Validate one sensor; its glob must stay inside the project folder `root`."""
    here = f"{where}: sensor '{name}'"
    check_name(name, where, "sensor name")
    unknown = set(table) - SENSOR_FIELDS
    if unknown:
        raise ScheduleError(here, sorted(unknown)[0], "unknown field", f"use one of: {', '.join(sorted(SENSOR_FIELDS))}")
    if "glob" not in table:
        raise ScheduleError(here, "glob", "missing", "add e.g. glob = \"incoming/*.csv\" (relative to the project folder)")
    parameter = table.get("parameter", "input_path")
    if not isinstance(parameter, str) or not parameter.isidentifier():
        raise ScheduleError(here, "parameter", f"{parameter!r} is not a Python name", "write parameter = \"input_path\"")
    stable = table.get("stable_seconds", DEFAULT_STABLE_SECONDS)
    if isinstance(stable, bool) or not isinstance(stable, int | float) or stable < 0:
        raise ScheduleError(here, "stable_seconds", f"{stable!r} is not a number of seconds >= 0", "write stable_seconds = 1.0")
    return SensorSpec(
        name=name,
        glob=check_glob(table["glob"], root, here),
        parameter=parameter,
        stable_seconds=float(stable),
        parameters=_table(table.get("parameters", {}), here, "parameters"),
        only=_only(table.get("only", []), here),
        max_concurrent=_positive_int(table.get("max_concurrent", 1), here, "max_concurrent"),
        jobs=None if table.get("jobs") is None else _positive_int(table["jobs"], here, "jobs"),
    )


def check_glob(pattern: Any, root: str, where: str) -> str:
    """The glob, relative to the project, or a URL of object storage (s3://bucket/incoming/*.csv); ScheduleError when a
    local glob is absolute or reaches outside the project."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ScheduleError(where, "glob", f"{pattern!r} is not a glob", "write e.g. glob = \"incoming/*.csv\"")
    if paths.is_url(pattern) and not pattern.lower().startswith("file://"):
        return paths.project_key(pattern, root, root)
    outside = ScheduleError(where, "glob", f"'{pattern}' reaches outside the project folder {root}",
                            "use a pattern relative to the project folder, e.g. \"incoming/*.csv\"")
    if os.path.isabs(pattern) or pattern.startswith("~"):
        raise outside
    parts = Path(pattern).parts
    if ".." in parts:
        raise outside
    # the part before the first wildcard, resolved, so a symlinked folder cannot lead outside either
    if paths.within(root, paths.fixed_prefix(Path(pattern).as_posix())) is None:
        raise outside
    return Path(pattern).as_posix()


def config_schedules(raw: Mapping[str, Any], where: str) -> list[ScheduleSpec]:
    """The schedules declared under [schedules.NAME]."""
    tables = _table(raw, where, "schedules")
    return [schedule_from(name, _table(t, where, f"schedules.{name}"), where) for name, t in sorted(tables.items())]


def config_sensors(raw: Mapping[str, Any], where: str, root: str) -> list[SensorSpec]:
    """The sensors declared under [sensors.NAME]."""
    tables = _table(raw, where, "sensors")
    return [sensor_from(name, _table(t, where, f"sensors.{name}"), where, root) for name, t in sorted(tables.items())]


def schedule_row(spec: ScheduleSpec) -> dict[str, Any]:
    """The definition columns of a store row."""
    return {"name": spec.name, "source": spec.source, "cron": spec.cron, "timezone": spec.timezone,
            "parameters": dict(spec.parameters), "only_tasks": list(spec.only), "catchup": spec.catchup,
            "max_concurrent": spec.max_concurrent, "overlap": spec.overlap, "jobs": spec.jobs, "sla": spec.sla, "alert": spec.alert}


def schedule_from_row(row: Mapping[str, Any]) -> ScheduleSpec:
    """A spec from a store row (validated when it was written)."""
    return ScheduleSpec(name=row["name"], cron=row["cron"], timezone=row["timezone"], parameters=row["parameters"] or {},
                        only=tuple(row["only_tasks"] or ()), catchup=row["catchup"], max_concurrent=row["max_concurrent"],
                        overlap=row["overlap"], jobs=row["jobs"], source=row["source"], sla=row.get("sla"), alert=row.get("alert"))
