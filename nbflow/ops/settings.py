"""The operations settings of nbflow.toml, validated: [alerts], [breakers], [forecast], [openlineage], and the
`alert`/`sla` keys of [tasks."x"]. Pure: tables in, frozen values out (Apprise URLs are checked by ops.targets)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..model import Config, Pipeline
from ..states import Severity

ALERT_LEVELS = ("critical", "warning", "info", "off")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.ASCII)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
TRANSPORTS = ("http", "file", "console")


def parse_duration(value: Any) -> float | None:
    """Seconds in "90s", "15m", "1h30m", "2d" or a plain number of seconds; None when it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(" ", "")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) else None


@dataclass(frozen=True)
class AlertSettings:
    """Where each severity goes and how deliveries behave."""

    targets: Mapping[Severity, tuple[str, ...]] = field(default_factory=dict)
    rate_limit: int = 30  # alerts of one severity routed per rate_window; beyond, recorded rate_limited, not sent
    rate_window: float = 3600.0
    retries: int = 3  # further attempts of a failed delivery, with exponential backoff
    retry_delay: float = 2.0
    timeout: float = 10.0  # seconds for one delivery attempt
    flush_timeout: float = 15.0  # at the end of a run, wait this long for deliveries still under way

    @property
    def configured(self) -> bool:
        return any(self.targets.values())


@dataclass(frozen=True)
class BreakerSpec:
    """A circuit breaker for an outside service named by `uses:NAME` tags."""

    name: str
    failures: int = 3  # counted failures within `window` that open it
    window: float = 900.0
    cooldown: float = 600.0  # open this long, then half-open: the next task using it runs as a probe
    errors: tuple[str, ...] = ()  # count only these exception names (ename); empty: every outage-like failure


@dataclass(frozen=True)
class ForecastSettings:
    history: int = 20  # successful attempts per task the forecast reads
    min_history: int = 3  # fewer than this: no forecast for the task
    slow_factor: float = 2.0  # slow when running longer than max(p95 * slow_factor, p95 + slow_margin)
    slow_margin: float = 60.0


@dataclass(frozen=True)
class LineageSettings:
    """Where OpenLineage events go."""

    transport: str  # http | file | console
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    path: str | None = None
    namespace: str = "nbflow"
    timeout: float = 5.0  # one HTTP post
    flush_timeout: float = 10.0  # at the end of a run


@dataclass(frozen=True)
class OpsSettings:
    alerts: AlertSettings = AlertSettings()
    breakers: Mapping[str, BreakerSpec] = field(default_factory=dict)  # every name a task uses, and every one declared
    forecast: ForecastSettings = ForecastSettings()
    openlineage: LineageSettings | None = None
    task_alert: Mapping[str, str] = field(default_factory=dict)  # task -> critical|warning|info|off
    task_sla: Mapping[str, float] = field(default_factory=dict)  # task -> seconds
    warnings: tuple[str, ...] = ()  # e.g. a declared breaker no task uses


def _where(config: Config) -> str:
    return config.source or f"{config.root}/nbflow.toml"


def _number(value: Any, where: str, name: str, *, minimum: float, whole: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value >= minimum and (not whole or isinstance(value, int))
    if not ok:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(where, name, f"{value!r} is not {kind} >= {minimum:g}",
                          f"Fix: write {name.split('.')[-1]} = {max(1, int(minimum))}")
    return float(value)


def _duration(value: Any, where: str, name: str) -> float:
    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        raise ConfigError(where, name, f"{value!r} is not a duration", f'Fix: write {name.split(".")[-1]} = "15m" (s, m, h or d)')
    return seconds


def _unknown(table: Mapping[str, Any], known: set[str], where: str, prefix: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise ConfigError(where, f"{prefix}.{extra[0]}", "unknown field", f"Fix: use one of: {', '.join(sorted(known))}")


def alert_settings(raw: Mapping[str, Any], where: str) -> AlertSettings:
    known = {"critical", "warning", "info", "rate_limit", "rate_window", "retries", "retry_delay", "timeout", "flush_timeout"}
    _unknown(raw, known, where, "alerts")
    targets: dict[Severity, tuple[str, ...]] = {}
    for sev in Severity:
        value = raw.get(sev.value, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(where, f"alerts.{sev.value}", f"{value!r} is not a list of targets",
                              f'Fix: write {sev.value} = ["json://alerts.example/nbflow", "command:./page.sh"]')
        targets[sev] = tuple(v.strip() for v in value)
    d = AlertSettings()
    return AlertSettings(
        targets=targets,
        rate_limit=int(_number(raw.get("rate_limit", d.rate_limit), where, "alerts.rate_limit", minimum=1, whole=True)),
        rate_window=_duration(raw.get("rate_window", d.rate_window), where, "alerts.rate_window"),
        retries=int(_number(raw.get("retries", d.retries), where, "alerts.retries", minimum=0, whole=True)),
        retry_delay=_duration(raw.get("retry_delay", d.retry_delay), where, "alerts.retry_delay"),
        timeout=_duration(raw.get("timeout", d.timeout), where, "alerts.timeout"),
        flush_timeout=_number(raw.get("flush_timeout", d.flush_timeout), where, "alerts.flush_timeout", minimum=0),
    )


_BREAKER_FIELDS = {"failures", "window", "cooldown", "breaker_errors"}


def _breaker(name: str, table: Mapping[str, Any], base: BreakerSpec, where: str, prefix: str) -> BreakerSpec:
    _unknown(table, _BREAKER_FIELDS, where, prefix)
    errors = table.get("breaker_errors", list(base.errors))
    if not isinstance(errors, list) or not all(isinstance(e, str) and e.isidentifier() for e in errors):
        raise ConfigError(where, f"{prefix}.breaker_errors", f"{errors!r} is not a list of exception names",
                          'Fix: write breaker_errors = ["ConnectionError", "TimeoutError"]')
    return BreakerSpec(
        name=name,
        failures=int(_number(table.get("failures", base.failures), where, f"{prefix}.failures", minimum=1, whole=True)),
        window=_duration(table.get("window", base.window), where, f"{prefix}.window"),
        cooldown=_duration(table.get("cooldown", base.cooldown), where, f"{prefix}.cooldown"),
        errors=tuple(errors),
    )


def breaker_settings(raw: Mapping[str, Any], used: Mapping[str, list[str]], where: str) -> tuple[dict[str, BreakerSpec], list[str]]:
    """[breakers]: scalar keys are defaults for every breaker, [breakers.NAME] tables override them for one.
    Every name a `uses:` tag gives has a breaker (defaults when undeclared). Returns (breakers, warnings)."""
    defaults = {k: v for k, v in raw.items() if not isinstance(v, Mapping)}
    base = _breaker("*", defaults, BreakerSpec("*"), where, "breakers")
    out = {}
    warnings = []
    for name, table in raw.items():
        if isinstance(table, Mapping):
            out[name] = _breaker(name, table, base, where, f"breakers.{name}")
            if name not in used:
                warnings.append(f"[breakers.{name}] in {where} guards no task: no notebook has a `uses:{name}` tag")
    for name in used:
        out.setdefault(name, BreakerSpec(name, base.failures, base.window, base.cooldown, base.errors))
    return dict(sorted(out.items())), warnings


def forecast_settings(raw: Mapping[str, Any], where: str) -> ForecastSettings:
    _unknown(raw, {"history", "min_history", "slow_factor", "slow_margin"}, where, "forecast")
    d = ForecastSettings()
    margin = raw.get("slow_margin", d.slow_margin)
    seconds = parse_duration(margin)
    if seconds is None or seconds < 0:
        raise ConfigError(where, "forecast.slow_margin", f"{margin!r} is not a duration", 'Fix: write slow_margin = "60s"')
    return ForecastSettings(
        history=int(_number(raw.get("history", d.history), where, "forecast.history", minimum=1, whole=True)),
        min_history=int(_number(raw.get("min_history", d.min_history), where, "forecast.min_history", minimum=1, whole=True)),
        slow_factor=_number(raw.get("slow_factor", d.slow_factor), where, "forecast.slow_factor", minimum=1),
        slow_margin=seconds,
    )


def lineage_settings(raw: Mapping[str, Any], where: str, root: str) -> LineageSettings | None:
    if not raw:
        return None
    _unknown(raw, {"transport", "url", "endpoint", "path", "namespace", "timeout", "flush_timeout"}, where, "openlineage")
    transport = raw.get("transport", "http" if "url" in raw else "file" if "path" in raw else None)
    if transport not in TRANSPORTS:
        raise ConfigError(where, "openlineage.transport", f"{transport!r} is not one of {', '.join(TRANSPORTS)}",
                          'Fix: write transport = "http" with url = "http://marquez:5000", '
                          'or transport = "file" with path = "lineage.jsonl"')
    for key in ("url", "endpoint", "path", "namespace"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise ConfigError(where, f"openlineage.{key}", f"{raw[key]!r} is not a string", f'Fix: write {key} = "..."')
    url, path = raw.get("url"), raw.get("path")
    if transport == "http" and not (url and url.startswith(("http://", "https://"))):
        raise ConfigError(where, "openlineage.url", f"{url!r} is not an http(s) URL", 'Fix: write url = "http://marquez:5000"')
    if transport == "file" and not path:
        raise ConfigError(where, "openlineage.path", "missing", 'Fix: write path = ".nbflow/openlineage.jsonl"')
    import importlib.util
    import os

    if importlib.util.find_spec("openlineage.client") is None:
        raise ConfigError(where, "openlineage", "the openlineage-python client is not installed",
                          "Fix: pip install 'nbflow[openlineage]' (or remove the [openlineage] table)")
    d = LineageSettings(transport)
    return LineageSettings(
        transport=transport, url=url, endpoint=raw.get("endpoint", d.endpoint).lstrip("/"),
        path=os.path.normpath(os.path.join(root, os.path.expanduser(path))) if path else None,
        namespace=raw.get("namespace", d.namespace),
        timeout=_duration(raw.get("timeout", d.timeout), where, "openlineage.timeout"),
        flush_timeout=_number(raw.get("flush_timeout", d.flush_timeout), where, "openlineage.flush_timeout", minimum=0),
    )


def ops_settings(config: Config, pipeline: Pipeline | None = None) -> OpsSettings:
    """Everything operations needs from the project's settings; ConfigError naming the field otherwise.
    With the pipeline, every `uses:NAME` tag gets its breaker."""
    where = _where(config)
    task_alert: dict[str, str] = {}
    task_sla: dict[str, float] = {}
    for name, table in config.tasks.items():
        if "alert" in table:
            if table["alert"] not in ALERT_LEVELS:
                raise ConfigError(where, f"tasks.{name}.alert", f"{table['alert']!r} is not one of {', '.join(ALERT_LEVELS)}",
                                  'Fix: write alert = "critical" (or "off" to silence this task)')
            task_alert[name] = table["alert"]
        if "sla" in table:
            task_sla[name] = _duration(table["sla"], where, f"tasks.{name}.sla")
    used: dict[str, list[str]] = {}
    for task in (pipeline.tasks.values() if pipeline else ()):
        for service in task.uses:
            used.setdefault(service, []).append(task.name)
    breakers, warnings = breaker_settings(config.breakers, used, where)
    return OpsSettings(
        alerts=alert_settings(config.alerts, where),
        breakers=breakers,
        forecast=forecast_settings(config.forecast, where),
        openlineage=lineage_settings(config.openlineage, where, config.root),
        task_alert=task_alert,
        task_sla=task_sla,
        warnings=tuple(warnings),
    )
