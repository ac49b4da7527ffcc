"""Live updates by long-polling: answer as soon as the store's newest event id moves or the pipeline's sources change
(nbflow.toml, a notebook added, edited or removed), else after a timeout."""
from __future__ import annotations

import asyncio

from .base import NbflowHandler, route

POLL_S = 0.2
SOURCES_EVERY = 5  # polls: the notebooks' sizes and mtimes are checked once a second
DEFAULT_TIMEOUT_S = 20
MAX_TIMEOUT_S = 30


class ChangesHandler(NbflowHandler):
    closed = False

    def on_connection_close(self) -> None:
        self.closed = True

    @route
    async def get(self) -> None:
        since = self.int_arg("since", 0, 0, 2**62)
        timeout = self.int_arg("timeout", DEFAULT_TIMEOUT_S, 0, 3600)
        known = self.get_argument("sources", "")
        folder = self.folder()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, MAX_TIMEOUT_S)
        sources = await self.blocking(self.fingerprint, folder)
        polls = 0
        while True:
            # One `SELECT max(id)` in a worker thread per poll: the loop never blocks, no thread is held between polls.
            event_id = await self.blocking(self.nbflow.last_event_id, folder)
            if polls and polls % SOURCES_EVERY == 0:
                sources = await self.blocking(self.fingerprint, folder)
            moved = bool(known) and sources != known
            if event_id != since or moved or loop.time() >= deadline or self.closed:
                break
            polls += 1
            await asyncio.sleep(POLL_S)
        if not self.closed:
            self.reply({"event_id": event_id, "changed": event_id != since or moved, "sources": sources})

    def fingerprint(self, folder: str) -> str:
        with self.nbflow.project(folder) as project:
            return project.source_fingerprint()
