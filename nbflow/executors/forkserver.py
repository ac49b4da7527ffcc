"""The runner's side of the kernel template (template.py): start it, ask it for a kernel, stop it. Standard library only,
so a run can start its template before it imports jupyter_client.

One template per interpreter and preload list, per process, started on first use and kept for the next runs of the
process (the scheduler's); it exits when the process closes it at exit, or, if the process is killed, when the
pipe it watches reaches EOF, killing the kernels it forked on its way out.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from typing import Any

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "template.py")
# Runs template.py as a script: neither the template nor its kernels import nbflow (nor see it on sys.path).
BOOT = "import sys; p = sys.argv[1]; ns = {'__name__': 'nbflow_template', '__file__': p}; " \
       "exec(compile(open(p, encoding='utf-8').read(), p, 'exec'), ns); ns['main']()"
MAX_TEMPLATE_FAILURES = 3  # a template that keeps dying is not restarted again in this process
log = logging.getLogger("nbflow.kernels")


_socket_dir: str | None = None


class ForkUnavailable(Exception):
    """This kernel cannot be forked here; it is launched the usual way."""


def socket_dir() -> str:
    """A private folder for this process's kernel sockets (and its templates'), removed when the process exits."""
    global _socket_dir
    if _socket_dir is None:
        _socket_dir = tempfile.mkdtemp(prefix="nbflow-ipc-")
        atexit.register(shutil.rmtree, _socket_dir, ignore_errors=True)
    return _socket_dir


class Template:
    """One template process, its listening socket and the pipe whose end tells it the runner is gone."""

    def __init__(self, preload: tuple[str, ...], folder: str) -> None:
        self.preload = preload
        self.path = os.path.join(folder, f"template-{uuid.uuid4().hex[:8]}")
        self.env = dict(os.environ)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        read_end, self._watch = os.pipe()
        try:
            listener.bind(f"{self.path}.sock")
            listener.listen(64)
            config = {"listen_fd": listener.fileno(), "watch_fd": read_end, "preload": list(preload)}
            with open(f"{self.path}.log", "ab") as out:
                self.process = subprocess.Popen([sys.executable, "-c", BOOT, TEMPLATE, json.dumps(config)], cwd=folder,
                                                pass_fds=(listener.fileno(), read_end), stdin=subprocess.DEVNULL,
                                                stdout=out, stderr=out, start_new_session=True)
        except BaseException:
            os.close(self._watch)
            raise
        finally:
            listener.close()  # the template holds it now: requests queue there while it imports
            os.close(read_end)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def interpreter_env_changed(self, env: dict[str, str]) -> str | None:
        """A PYTHON* variable that differs between the template's start and this kernel (PYTHONEXECUTABLE aside)."""
        for key in sorted({k for k in (*env, *self.env) if k.startswith("PYTHON") and k != "PYTHONEXECUTABLE"}):
            if env.get(key) != self.env.get(key):
                return key
        return None

    async def fork(self, request: dict[str, Any]) -> tuple[int, int]:
        """Ask for a kernel; its (pid, pidfd). Waits while the template is still importing (the request queues)."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, f"{self.path}.sock")
            await loop.sock_sendall(sock, json.dumps(request).encode() + b"\n")
            data, fds = await _recv_with_fds(sock)
        finally:
            sock.close()
        try:
            reply = json.loads(data)
        except ValueError:
            for fd in fds:
                os.close(fd)
            raise RuntimeError(f"the kernel template answered {data[:200]!r}{self.log_tail()}") from None
        if "error" in reply or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise RuntimeError(f"the kernel template could not fork: {reply.get('error', reply)}{self.log_tail()}")
        return int(reply["pid"]), fds[0]

    def log_tail(self) -> str:
        try:
            with open(f"{self.path}.log", encoding="utf-8", errors="replace") as f:
                text = f.read()[-2000:].strip()
        except OSError:
            return ""
        return f"\n--- kernel template output ---\n{text}" if text else ""

    def close(self) -> None:
        """EOF on its pipe: the template kills the kernels still alive and exits."""
        try:
            os.close(self._watch)
        except OSError:
            pass
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for suffix in (".sock", ".log"):
            try:
                os.remove(self.path + suffix)
            except OSError:
                pass


async def _recv_with_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One reply line and the file descriptors sent with it, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    data, fds = b"", []
    while not data.endswith(b"\n"):
        try:
            chunk, got, _, _ = socket.recv_fds(sock, 65536, 4)
        except BlockingIOError:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock, _set_once, readable)
            try:
                await readable
            finally:
                loop.remove_reader(sock)
            continue
        fds.extend(got)
        if not chunk:
            break
        data += chunk
    return data, fds


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_templates: dict[tuple[str, ...], Template] = {}
_failures: dict[tuple[str, ...], int] = {}
_lock = threading.Lock()  # the scheduler and notebooks may start runs from several threads


def get_template(preload: tuple[str, ...] = ()) -> Template:
    """This process's template for `preload`, started now if there is none (or it died)."""
    with _lock:
        template = _templates.get(preload)
        if template is not None and template.alive:
            return template
        if template is not None:
            _failures[preload] = _failures.get(preload, 0) + 1
            log.warning("the kernel template (pid %s) exited with %s%s", template.process.pid, template.process.returncode,
                        template.log_tail())
            template.close()
            del _templates[preload]
        if _failures.get(preload, 0) >= MAX_TEMPLATE_FAILURES:
            raise ForkUnavailable(f"the kernel template exited {_failures[preload]} times; kernels are launched instead")
        template = _templates[preload] = Template(preload, socket_dir())
        return template


def warm(preload: tuple[str, ...] = ()) -> None:
    """Start the template now, so it imports while the runner does its own work."""
    if not sys.platform.startswith("linux"):
        return
    try:
        get_template(preload)
    except Exception:  # noqa: BLE001 - the first fork reports it, and falls back
        log.debug("could not start the kernel template", exc_info=True)


@atexit.register
def close_templates() -> None:
    with _lock:
        for template in _templates.values():
            template.close()
        _templates.clear()
