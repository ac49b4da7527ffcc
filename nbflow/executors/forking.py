"""Kernels forked from a template process: the fast path of kernels.start, as a jupyter_client kernel provisioner.

A spawned kernel imports ipykernel, IPython, zmq and tornado before it can answer: 0.3-0.5 s of CPU, per kernel.
The template (template.py, one process per interpreter and preload list, started on first use) has imported them
once; each kernel is a fork of it that then applies its own argv, environment and working directory, so it is the
same fresh kernel a launch would give, ready in a fraction of the time. The runner is not the kernels' parent: it
watches each one through a pidfd the template hands over with its pid.

Only this interpreter's own ipykernel can be forked, and only on Linux (`unavailable_reason` says why not);
everything else, and any failure here, falls back to launching the kernel (kernels.start).
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from traitlets import List, Unicode

if TYPE_CHECKING:
    from jupyter_client.connect import KernelConnectionInfo
    from jupyter_client.kernelspec import KernelSpec

from .forkserver import ForkUnavailable, get_template

KERNEL_MODULES = ("ipykernel_launcher", "ipykernel")


def unavailable_reason(spec: KernelSpec) -> str | None:
    """Why a kernel of this spec cannot be forked from this interpreter's template; None when it can."""
    if not sys.platform.startswith("linux"):
        return f"forking kernels needs Linux (this is {sys.platform})"
    if not (hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal") and hasattr(socket, "send_fds")):
        return "this Python has no pidfd support"
    argv = list(spec.argv)
    if not argv or not sys.executable:
        return "the kernel spec has no command"
    if argv[0] in {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}:
        argv[0] = sys.executable  # as jupyter_client does when it launches it
    if not same_interpreter(argv[0]):
        return f"the kernel spec runs {argv[0]}, not this interpreter ({sys.executable})"
    if len(argv) < 3 or argv[1] != "-m" or argv[2] not in KERNEL_MODULES:
        return "the kernel spec does not run `python -m ipykernel_launcher`"
    if "{connection_file}" not in argv:
        return "the kernel spec does not take a connection file"
    if spec.interrupt_mode != "signal":
        return f"the kernel spec's interrupt mode is {spec.interrupt_mode}"
    if spec.metadata.get("kernel_provisioner"):
        return "the kernel spec names a provisioner of its own"
    return None


def same_interpreter(command: str) -> bool:
    """Whether `command` is this interpreter in this environment: the same file, reached from the same folder (a venv's
    python is a link to the base interpreter, so the real file alone would not tell two venvs apart)."""
    found = shutil.which(command) or command
    try:
        return (os.path.dirname(os.path.abspath(found)) == os.path.dirname(os.path.abspath(sys.executable))
                and os.path.samefile(found, sys.executable))
    except OSError:
        return False


class ForkedProcess:
    """A forked kernel as the runner sees it: the subset of subprocess.Popen that jupyter_client uses, over a pidfd.

    The runner is not the kernel's parent (the template is, and reaps it), so the exit status is not known: a kernel
    that has exited reports -1."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._fd = pidfd
        self._poll = select.poll()
        self._poll.register(pidfd, select.POLLIN)

    def poll(self) -> int | None:
        if self.returncode is None and (self._fd < 0 or self._poll.poll(0)):
            self.returncode = -1
            self.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self._fd >= 0:
            if not self._poll.poll(None if timeout is None else int(timeout * 1000)):
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
        return self.poll() or -1

    def send_signal(self, signum: int) -> None:
        if self.poll() is not None:
            raise ProcessLookupError(f"kernel {self.pid} has exited")
        signal.pidfd_send_signal(self._fd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self._fd >= 0:
            self._poll.unregister(self._fd)
            os.close(self._fd)
            self._fd = -1


class ForkProvisioner(LocalProvisioner):
    """jupyter_client's LocalProvisioner, except that the kernel process is forked from a template instead of launched.

    Everything before and after the launch is LocalProvisioner's: the connection file, the command, the environment
    (kernel spec env included), shutdown, interrupt. Registered as the `nbflow-fork` kernel provisioner; nbflow sets it
    on the kernel managers it starts in fork mode."""

    preload = List(Unicode(), default_value=[], help="Modules the template imports besides the kernel's stack.").tag(config=True)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        env: dict[str, str] = dict(kwargs.get("env") or os.environ)
        env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's launch_kernel sets it
        output = kwargs.get("stdout")
        template = get_template(tuple(self.preload))
        changed = template.interpreter_env_changed(env)
        if changed:
            raise ForkUnavailable(f"{changed} differs from the template's: it only takes effect when an interpreter starts")
        request = {"module": cmd[2], "argv": [os.path.expanduser(a) for a in cmd[3:]], "env": env,
                   "cwd": os.fspath(kwargs.get("cwd") or os.getcwd()), "output": getattr(output, "name", None)}
        pid, pidfd = await template.fork(request)
        self.process = ForkedProcess(pid, pidfd)  # type: ignore[assignment]  # what jupyter_client uses of a Popen
        self.pid = self.pgid = pid  # the kernel leads a session (and process group) of its own
        self.cwd = request["cwd"]
        return self.connection_info

    async def send_signal(self, signum: int) -> None:
        """To the kernel's process group (its subprocesses too, as for a launched kernel), while the kernel lives."""
        if self.process is None or self.pid is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.pid, signum)
        except OSError:
            self.process.send_signal(signum)

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart)
        if isinstance(self.process, ForkedProcess):
            self.process.close()


