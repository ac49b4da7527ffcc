"""Operations routes: alerts and their deliveries, circuit breakers (and resetting one by hand)."""
from __future__ import annotations

from typing import Any

from . import views
from .base import NbflowHandler, route


class AlertsHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        limit = self.int_arg("limit", 50, 1, 500)
        offset = self.int_arg("offset", 0, 0, 1_000_000)
        self.reply(await self.blocking(self.alerts, self.folder(), limit, offset))

    def alerts(self, folder: str, limit: int, offset: int) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            return {"alerts": views.alerts(project.alerts(limit, offset))}


class BreakersHandler(NbflowHandler):
    @route
    async def get(self) -> None:
        self.reply(await self.blocking(self.breakers, self.folder()))

    def breakers(self, folder: str) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            return {"breakers": views.as_plain(project.breakers())}


class BreakerResetHandler(NbflowHandler):
    @route
    async def post(self, name: str) -> None:
        self.reply(await self.blocking(self.reset, self.folder(), name))

    def reset(self, folder: str, name: str) -> dict[str, Any]:
        with self.nbflow.project(folder) as project:
            return {"breaker": views.as_plain(project.reset_breaker(name))}
