"""Kernel managers for attempts. Imported only where kernels start (never on the compile or plan path)."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from typing import Any

from jupyter_client.manager import AsyncKernelManager

_socket_dir: str | None = None


def socket_dir() -> str:
    """A private folder for this process's kernel sockets, removed when the process exits."""
    global _socket_dir
    if _socket_dir is None:
        _socket_dir = tempfile.mkdtemp(prefix="nbflow-ipc-")
        atexit.register(shutil.rmtree, _socket_dir, ignore_errors=True)
    return _socket_dir


class IPCKernelManager(AsyncKernelManager):
    """A local kernel over IPC sockets: concurrent starts cannot race for TCP ports (papermill #511) and no
    port opens on the machine. Each kernel gets its own socket path in a private temp folder; jupyter_client's
    default would put `kernel-ipc-N` files in the notebook's folder, where two kernels would collide."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(socket_dir(), uuid.uuid4().hex[:12]))
        super().__init__(**kwargs)
