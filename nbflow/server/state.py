"""What the extension keeps between requests: the root folder, one open Store per project, the runner processes."""
from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from ..config import load_config
from ..model import Config
from ..project import Project
from ..store import Store
from .launcher import RunnerProcesses


@dataclass
class ServerState:
    root_dir: str
    allow_hidden: bool = False
    runners: RunnerProcesses = field(default_factory=RunnerProcesses)
    _stores: dict[tuple[str, str], tuple[Store, int]] = field(default_factory=dict)  # (store path, project) -> (store, inode)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    backfills: dict[str, Any] = field(default_factory=dict)  # project root -> the Backfill process this server started
    queue_task: Any = None  # the asyncio task that starts queued runs (from the first request on)
    known: set[str] = field(default_factory=set)  # project folders named by a request: their run queues are watched

    def project(self, folder: str) -> Project:
        """The project at `folder` with fresh settings; its store is opened once and shared between requests (once
        the file exists: browsing a project creates nothing). Handlers reach the store only through this Project."""
        config = load_config(folder)
        self.known.add(folder)
        return Project(folder, config=config, store=self._store(config))

    def last_event_id(self, folder: str) -> int:
        with self.project(folder) as project:
            return project.last_event_id()

    def _store(self, config: Config) -> Store | None:
        key = (config.store, config.name)
        with self._lock:
            cached = self._stores.get(key)
            try:
                inode = os.stat(config.store).st_ino
            except OSError:
                inode = None
            if cached is not None and cached[1] == inode:
                return cached[0]
            if cached is not None:  # the file was deleted (`make clean`) or replaced: let go of the old one
                del self._stores[key]
                cached[0].close()
            if inode is None:
                return None
            store = Store(config.store, config.name, config.root)
            self._stores[key] = (store, inode)
            return store

    def watch_queues(self) -> None:
        """Start, once, the loop that starts each known project's queued runs when the project is idle."""
        if self.queue_task is None:
            from .runs import watch_queues

            self.queue_task = asyncio.ensure_future(watch_queues(self))

    def close(self) -> None:
        if self.queue_task is not None:
            self.queue_task.cancel()
        with self._lock:
            for store, _ in self._stores.values():
                store.close()
            self._stores.clear()
