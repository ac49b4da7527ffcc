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
    _stores: dict[str, tuple[Store, int]] = field(default_factory=dict)  # store path -> (open store, file inode)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def project(self, folder: str) -> Project:
        """The project at `folder` with fresh settings; its store is shared between requests once the file exists."""
        config = load_config(folder)
        return Project(folder, config=config, store=self.store(config))

    def store(self, config: Config) -> Store | None:
        """The project's open store, or None while it has no store file (no run yet): browsing creates nothing."""
        with self._lock:
            cached = self._stores.get(config.store)
            try:
                inode = os.stat(config.store).st_ino
            except OSError:
                inode = None
            if cached is not None and cached[1] == inode:
                return cached[0]
            if cached is not None:  # the file was deleted (`make clean`) or replaced: let go of the old one
                del self._stores[config.store]
                cached[0].close()
            if inode is None:
                return None
            store = Store(config.store)
            self._stores[config.store] = (store, inode)
            return store

    def last_event_id(self, config: Config) -> int:
        store = self.store(config)
        return store.last_event_id() if store else 0

    def close(self) -> None:
        with self._lock:
            for store, _ in self._stores.values():
                store.close()
            self._stores.clear()
