"""The base of every nbflow handler: Jupyter auth, project resolution, JSON replies, errors as 400/404/409."""
from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import ConflictError, NbflowError, NotFoundError
from . import paths
from .state import ServerState

T = TypeVar("T")
AUTH_RESOURCE = "nbflow"


def status_of(err: NbflowError) -> int:
    if isinstance(err, NotFoundError):
        return 404
    if isinstance(err, ConflictError):
        return 409
    return 400


def route(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Every HTTP method of every nbflow handler: authenticated, authorized on resource 'nbflow', NbflowError -> 4xx JSON."""

    @functools.wraps(method)
    async def mapped(self: NbflowHandler, *args: Any, **kwargs: Any) -> None:
        try:
            await method(self, *args, **kwargs)
        except NbflowError as err:  # an expected problem: its message (never a traceback) and a 4xx status
            self.log.info("nbflow %s %s: %s", self.request.method, self.request.path, err.message)
            self.reply({"message": paths.server_relative(self.nbflow.root_dir, err.message)}, status_of(err))

    return web.authenticated(authorized(mapped))  # type: ignore[return-value]


class NbflowHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def nbflow(self) -> ServerState:
        state: ServerState = self.settings["nbflow"]
        return state

    def json_body(self) -> Any:
        """The request's JSON body (None when empty); a body that is not UTF-8 JSON is a 400 that says so."""
        raw = self.request.body.strip()
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise NbflowError(f"the request body is not UTF-8 text (byte {e.start}). Fix: send JSON encoded as UTF-8") from None
        except ValueError as e:
            raise NbflowError(f"the request body is not JSON ({e}). Fix: send a JSON object like {{\"parameters\": {{}}}}") from None

    def project_arg(self) -> str:
        return self.get_argument("project", "").strip()

    def folder(self) -> str:
        """The absolute project folder the request names (404 for anything outside the root folder)."""
        return paths.project_folder(self.nbflow.root_dir, self.project_arg())

    def to_path(self, path: str | None) -> str | None:
        return paths.to_server_path(self.nbflow.root_dir, path)

    def openable(self, path: str | None) -> bool:
        """Whether JupyterLab can open this server-relative path (it refuses dot-folders unless allow_hidden)."""
        if not path or not os.path.exists(os.path.join(self.nbflow.root_dir, path)):
            return False
        return self.nbflow.allow_hidden or not paths.is_hidden(path)

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise NbflowError(f"query argument '{name}' must be a whole number, not '{raw}'") from None
        if not low <= value <= high:
            raise NbflowError(f"query argument '{name}' must be between {low} and {high}, not {value}")
        return value

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run store reads, compiling and process checks in a worker thread: the tornado loop never waits on SQLite."""
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, default=str))
