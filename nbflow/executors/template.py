"""The kernel template: a process that has imported ipykernel's stack and forks a fresh kernel per request.

This file is a plain script, never imported by nbflow: `forking.py` runs it with `python -c BOOT template.py CONFIG`, so
the template (and every kernel forked from it) holds nothing of nbflow or of the runner. It imports ipykernel, IPython,
zmq, tornado and traitlets, and the modules listed in `preload`, but creates no socket, thread or event loop (forking
a process that has them hangs the child) and never imports debugpy (a template that had imported it forked kernels
that sent no IOPub output). No user code ever runs here.

Protocol: the runner hands over a listening Unix socket (`listen_fd`) and the read end of a pipe (`watch_fd`). Each
connection carries one JSON line: argv, env, cwd and output file of a kernel, as jupyter_client would have launched
it. The template forks; the child becomes that kernel (new session, dies with the template, its own cwd, env, stdio,
sys.argv, reseeded random state) and the parent answers `{"pid": N}` with a pidfd of the child attached. When the pipe
reaches EOF the runner is gone, or closed us: every kernel still alive is killed, then the template exits.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
from typing import Any

# What a kernel imports on its way to "ready", imported once here instead of in every kernel.
# ipykernel.debugger is imported while debugpy is blocked, so it records that there is no debugger.
STACK = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.iostream", "ipykernel.comm",
    "ipykernel.debugger", "IPython.core.interactiveshell", "IPython.core.completer", "IPython.core.completerlib",
    "IPython.core.history", "IPython.core.magics", "IPython.core.profiledir", "IPython.core.debugger",
    "IPython.core.oinspect", "IPython.extensions.storemagic", "IPython.utils.wildcard", "jupyter_client.session",
    "jupyter_client.connect", "zmq", "zmq.eventloop.zmqstream", "tornado.ioloop", "tornado.gen", "tornado.locks",
    "tornado.queues", "tornado.platform.asyncio", "asyncio", "sqlite3", "comm", "unicodedata", "faulthandler",
)
PR_SET_PDEATHSIG = 1


def main() -> None:
    """Warm up, then serve fork requests; returns (in a forked child only) to run the kernel it became."""
    config = json.loads(sys.argv[2])
    if sys.path and sys.path[0] == "":  # as ipykernel_launcher does; the kernel's init_path puts '' back in its place
        del sys.path[0]
    error = _warm_up(config.get("preload", []))
    request, inherited = _serve(socket.socket(fileno=config["listen_fd"]), config["watch_fd"], error)
    _become_kernel(request, inherited)


def _warm_up(preload: list[str]) -> str | None:
    """Import the kernel's stack and the preloaded modules; the error to answer every request with, or None."""
    import importlib

    sys.modules["debugpy"] = None  # type: ignore[assignment]  # ipykernel then runs without its debugger (see above)
    for name in (*STACK, *preload):
        try:
            importlib.import_module(name)
        except BaseException as e:  # noqa: BLE001 - reported to the runner, which starts its kernels the usual way
            return f"the kernel template could not import {name}: {type(e).__name__}: {e}"
    import threading

    if threading.active_count() != 1:
        return f"importing {', '.join(preload) or 'the kernel stack'} started threads: forking would hang the kernels"
    import gc

    gc.freeze()  # what the template holds stays out of the kernels' garbage collections: their pages stay shared
    return None


def _serve(listener: socket.socket, watch_fd: int, error: str | None) -> tuple[dict[str, Any], list[Any]]:
    """Fork a kernel per request until the runner goes. Returns only in a child: its request, and what to close."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped by the system; the runner watches their pidfds
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner's Ctrl-C is the runner's to handle
    children: dict[int, int] = {}  # pidfd -> pid of each kernel forked and not yet exited
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "request")
    sel.register(watch_fd, selectors.EVENT_READ, "runner")
    while True:
        for key, _ in sel.select():
            if key.data == "runner":  # EOF: the runner exited or was killed; no kernel outlives it
                for pidfd in children:
                    _kill(pidfd)
                os._exit(0)
            if key.data == "child":  # a kernel exited
                sel.unregister(key.fd)
                os.close(key.fd)
                children.pop(key.fd, None)
                continue
            conn, _ = listener.accept()
            try:
                conn.settimeout(30)
                request = _read_request(conn)
                if error:
                    raise RuntimeError(error)
                pid = os.fork()
            except Exception as e:  # noqa: BLE001 - the runner falls back to starting this kernel the usual way
                _answer(conn, {"error": f"{type(e).__name__}: {e}"})
                continue
            if pid == 0:
                return request, [conn, listener, sel, watch_fd, *children]
            try:
                pidfd = os.pidfd_open(pid)
            except OSError as e:  # the child is already gone
                _answer(conn, {"error": f"the forked kernel exited at once ({e})"})
                continue
            children[pidfd] = pid
            sel.register(pidfd, selectors.EVENT_READ, "child")
            _answer(conn, {"pid": pid}, pidfd)


def _read_request(conn: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the runner closed the connection before its request ended")
        data += chunk
    return dict(json.loads(data))


def _answer(conn: socket.socket, reply: dict[str, Any], fd: int | None = None) -> None:
    try:
        socket.send_fds(conn, [json.dumps(reply).encode() + b"\n"], [fd] if fd is not None else [])
    except OSError:
        pass  # the runner gave up on this request; its kernel, if any, is killed when the runner goes
    finally:
        conn.close()


def _kill(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass


def _script_of(module: str) -> str:
    """The file `python -m module` runs: what sys.argv[0] is in a launched kernel."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is not None and spec.submodule_search_locations:
        spec = importlib.util.find_spec(f"{module}.__main__")
    return (spec.origin if spec is not None else None) or module


def _become_kernel(request: dict[str, Any], inherited: list[Any]) -> None:
    """In the forked child: become the kernel jupyter_client would have launched with this argv, env and cwd."""
    import ctypes
    import random

    template = os.getppid()
    os.setsid()  # like a launched kernel: its own process group, out of reach of the terminal's Ctrl-C
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the template...
    if os.getppid() != template:  # ...which may have died before prctl
        os._exit(1)
    for thing in inherited:
        if isinstance(thing, int):
            os.close(thing)
        else:
            thing.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request.get("output") or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    for fd, to in ((null, 0), (out, 1), (out, 2)):  # its own stdio, as a launched kernel has
        os.dup2(fd, to)
    os.close(null)
    os.close(out)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = [_script_of(request["module"]), *request["argv"]]
    random.seed()  # also done by random's own at-fork hook; numpy's global state has none
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    # these traits default to environment variables read when ipykernel was imported (in the template, before this
    # kernel's environment): without them the kernel prints the terminal `ipython kernel` banner into its output
    app.parent_handle = int(os.environ.get("JPY_PARENT_PID") or 0)
    app.interrupt = int(os.environ.get("JPY_INTERRUPT_EVENT") or 0)
    app.initialize(request["argv"])  # type: ignore[no-untyped-call]
    if "debugpy" in sys.modules and sys.modules["debugpy"] is None:
        del sys.modules["debugpy"]  # the notebook may import it
    app.start()  # type: ignore[no-untyped-call]
