"""Assemble one run's operations observers from the settings, and wait (bounded) for its alerts at the end."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

from ..engine.observe import RunObserver
from .alerting import AlertRouter, RunAlerts
from .alerts import Alert, AlertService
from .breakers import BreakerGate
from .forecast import ForecastWatch
from .lineage_events import LineageEvents
from .settings import OpsSettings

EventSink = Callable[[str, Mapping[str, Any]], None]


def run_observers(settings: OpsSettings, project: str, alerts: AlertService | None, *,
                  forecast_tick: float = 5.0) -> list[RunObserver]:
    """Alerts first (it reads the run's trigger and schedule level for the others), then breakers, forecasts and
    OpenLineage. `alerts` None: no alert is raised (not configured, or --no-alerts)."""
    sink: Callable[[Alert], None] | None = alerts.raise_ if alerts is not None else None
    router = AlertRouter(sink, settings.task_alert)
    observers: list[RunObserver] = [RunAlerts(router, project)]
    if settings.breakers:
        observers.append(BreakerGate(settings.breakers, router, os.getpid(), project))
    observers.append(ForecastWatch(settings.forecast, settings.task_sla, router, project, tick=forecast_tick))
    if settings.openlineage is not None:
        observers.append(LineageEvents(settings.openlineage, project))
    return observers


async def flush_alerts(alerts: AlertService | None, emit: EventSink) -> None:
    """Wait for the run's alerts to be recorded and delivered, at most the configured flush_timeout."""
    if alerts is None:
        return
    if not await asyncio.to_thread(alerts.flush):
        emit("warning", {"message": f"alert deliveries still under way after {alerts.settings.flush_timeout:g} s go on in "
                                    "the background; `nbflow alerts` shows whether they were sent"})
