"""Start a run in its own process (so it outlives the request and the browser tab), and reap it when it ends."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from ..errors import NbflowError
from ..project import Project, new_run_id


@dataclass
class Child:
    run_id: str
    proc: subprocess.Popen[bytes]
    log_path: str
    error_path: str  # where the runner writes why it stopped before recording its run

    def alive(self) -> bool:
        return self.proc.poll() is None


def runner_command(project: Project, run_id: str, parameters: Mapping[str, Any], only: Iterable[str], force: bool,
                   error_file: str, executor: str | None = None) -> list[str]:
    """The `nbflow run` command line for a triggered run; every value passed as JSON so its type survives."""
    cmd = [sys.executable, "-m", "nbflow", "run", project.root, "--run-id", run_id, "--trigger", "jupyter",
           "--error-file", error_file]
    for key, value in parameters.items():
        cmd += ["-p", f"{key}={json.dumps(value)}"]
    for name in only:
        cmd += ["--only", name]
    if executor:
        cmd += ["--executor", executor]
    return cmd + (["--force"] if force else [])


class RunnerProcesses:
    """Starts `nbflow run` processes and reaps them. Whether a run may start is the run claims' rule
    (nbflow/claims.py), checked by the runner atomically when it records its run: two runs whose data overlap
    cannot both start, even when they race."""

    def __init__(self) -> None:
        self._children: dict[str, Child] = {}

    def start(self, project: Project, parameters: Mapping[str, Any], only: Iterable[str], force: bool,
              executor: str | None = None) -> Child:
        """Spawn the runner of a new run (`executor`: "local" or "dask"; None: the project's own)."""
        run_id = new_run_id()
        logs = os.path.join(project.root, ".nbflow", "logs")
        os.makedirs(logs, exist_ok=True)
        log_path = os.path.join(logs, f"{run_id}.log")
        error_path = os.path.join(logs, f"{run_id}.error.json")
        log = open(log_path, "ab")  # noqa: SIM115 - closed by the reaper thread
        env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
        try:
            proc = subprocess.Popen(runner_command(project, run_id, parameters, only, force, error_path, executor), cwd=project.root,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        except OSError as err:
            log.close()
            raise NbflowError(f"cannot start the runner process ({err}). Fix: check that {sys.executable} still exists") from err
        child = self._children[run_id] = Child(run_id, proc, log_path, error_path)
        for done in [k for k, c in self._children.items() if not c.alive()]:
            del self._children[done]
        threading.Thread(target=_reap, args=(proc, log), name=f"nbflow-reap-{run_id}", daemon=True).start()
        return child


def _reap(proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    """Wait for the runner so it never lingers as a zombie, then close its log."""
    proc.wait()
    log.close()


def startup_error(child: Child) -> tuple[str, bool]:
    """Why a runner ended before recording its run (the error it wrote to its error file, else where its output is),
    and whether that was a conflict with another run."""
    try:
        with open(child.error_path, encoding="utf-8") as f:
            found = json.load(f)
        return str(found["message"]), bool(found.get("conflict"))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return (f"the runner process ended (exit code {child.proc.returncode}) before recording the run. "
            f"Fix: see its output in .nbflow/logs/{os.path.basename(child.log_path)} in the project folder"), False
