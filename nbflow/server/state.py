"""What the extension keeps between requests: the root folder, one open Store per project, the run launcher."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from ..config import load_config
from ..model import Config
from ..project import Project
from ..store import Store
from .launcher import Launcher


@dataclass
class ServerState:
    root_dir: str
    allow_hidden: bool = False
    launcher: Launcher = field(default_factory=Launcher)
    _stores: dict[str, Store] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def project(self, folder: str) -> Project:
        """The project at `folder` with fresh settings; its store is shared between requests once the file exists."""
        config = load_config(folder)
        return Project(folder, config=config, store=self.store(config))

    def store(self, config: Config) -> Store | None:
        """The project's open store, or None while it has no store file (no run yet): browsing creates nothing."""
        with self._lock:
            found = self._stores.get(config.store)
            if found is None and os.path.exists(config.store):
                found = self._stores[config.store] = Store(config.store)
            return found

    def last_event_id(self, config: Config) -> int:
        store = self.store(config)
        return store.last_event_id() if store else 0

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
