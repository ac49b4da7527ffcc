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
stderr_files: list[str] = []  # kernel output files of this process's kernels; execute.py reads and clears it
launched_pids: list[int] = []  # kernels started in this process, for the task timeout to stop them


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

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        """Send the kernel process's own stdout/stderr (not the notebook's) to a file that becomes part of the
        attempt's log, instead of the runner's terminal."""
        path = os.path.join(socket_dir(), f"{os.path.basename(self.ip)}.log")
        stderr_files.append(path)
        with open(path, "ab") as out:
            kw.setdefault("stdout", out)
            kw.setdefault("stderr", out)
            await super()._async_launch_kernel(kernel_cmd, **kw)
        pid = getattr(self.provisioner, "pid", None)
        if pid:
            launched_pids.append(pid)

    _launch_kernel = _async_launch_kernel  # type: ignore[assignment]
