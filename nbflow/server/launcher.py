"""Start a run in its own process (so it outlives the request and the browser tab), and reap it when it ends."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from ..errors import ConflictError, NbflowError
from ..project import Project, new_run_id
from ..records import RunRecord


@dataclass
class Child:
    run_id: str
    proc: subprocess.Popen[bytes]
    log_path: str
    error_path: str  # where the runner writes why it stopped before recording its run

    def alive(self) -> bool:
        return self.proc.poll() is None


def runner_command(project: Project, run_id: str, parameters: Mapping[str, Any], only: Iterable[str], force: bool,
                   error_file: str) -> list[str]:
    """The `nbflow run` command line for a triggered run; every value passed as JSON so its type survives."""
    cmd = [sys.executable, "-m", "nbflow", "run", project.root, "--run-id", run_id, "--trigger", "jupyter",
           "--error-file", error_file]
    for key, value in parameters.items():
        cmd += ["-p", f"{key}={json.dumps(value)}"]
    for name in only:
        cmd += ["--only", name]
    return cmd + (["--force"] if force else [])


class RunnerProcesses:
    """Starts `nbflow run` processes: at most one per project from this server; runs started elsewhere are found in
    the store."""

    def __init__(self) -> None:
        self._children: dict[str, Child] = {}

    def child(self, root: str) -> Child | None:
        found = self._children.get(root)
        return found if found is not None and found.alive() else None

    def start(self, project: Project, parameters: Mapping[str, Any], only: Iterable[str], force: bool,
              active: list[RunRecord], settled: Iterable[str] = (), run_id: str | None = None) -> Child:
        """Check and spawn in one synchronous step (no await in between: tornado runs one handler step at a time).

        `active`: the project's live running runs from the store (a run started with the CLI counts too).
        `settled`: run ids the store already shows finished; their runner may still be exiting, which is no conflict.
        `run_id`: the id to give the run (a queued run keeps the id it was queued under).
        """
        run_id = run_id or new_run_id()
        return self.spawn(project, run_id, lambda error_path: runner_command(project, run_id, parameters, only, force, error_path),
                          active, settled)

    def resume(self, project: Project, run_id: str, active: list[RunRecord], settled: Iterable[str] = ()) -> Child:
        """Start `nbflow resume RUN` in its own process (the checks of `start` first)."""
        return self.spawn(project, run_id, lambda error_path: [sys.executable, "-m", "nbflow", "resume", run_id, "-C", project.root],
                          active, settled)

    def busy(self, project: Project, active: list[RunRecord], settled: Iterable[str] = ()) -> str | None:
        """Why a new run cannot start now (a run of the project is going), or None."""
        mine = self.child(project.root)
        if mine is not None and mine.run_id not in set(settled):
            return f"a run of this project is already running: {mine.run_id} (started from Jupyter, pid {mine.proc.pid})"
        if active:
            run = active[0]
            return f"a run of this project is already running: {run.id} (trigger {run.trigger}, pid {run.pid} on {run.host})"
        return None

    def spawn(self, project: Project, run_id: str, command: Callable[[str], list[str]], active: list[RunRecord],
              settled: Iterable[str] = ()) -> Child:
        """Refuse while a run of the project goes (409), else start `command(error_path)` as the runner of `run_id`."""
        why = self.busy(project, active, settled)
        if why:
            raise ConflictError(f"{why}. Fix: wait for it to finish, cancel it, or queue this run")
        logs = os.path.join(project.root, ".nbflow", "logs")
        os.makedirs(logs, exist_ok=True)
        log_path = os.path.join(logs, f"{run_id}.log")
        error_path = os.path.join(logs, f"{run_id}.error.json")
        log = open(log_path, "ab")  # noqa: SIM115 - closed by the reaper thread
        env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
        try:
            proc = subprocess.Popen(command(error_path), cwd=project.root,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        except OSError as err:
            log.close()
            raise NbflowError(f"cannot start the runner process ({err}). Fix: check that {sys.executable} still exists") from err
        child = self._children[project.root] = Child(run_id, proc, log_path, error_path)
        threading.Thread(target=_reap, args=(proc, log), name=f"nbflow-reap-{run_id}", daemon=True).start()
        return child


def _reap(proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    """Wait for the runner so it never lingers as a zombie, then close its log."""
    proc.wait()
    log.close()


def startup_error(child: Child) -> str:
    """Why a runner ended before recording its run: the error it wrote to its error file, else where its output is."""
    try:
        with open(child.error_path, encoding="utf-8") as f:
            return str(json.load(f)["message"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return (f"the runner process ended (exit code {child.proc.returncode}) before recording the run. "
            f"Fix: see its output in .nbflow/logs/{os.path.basename(child.log_path)} in the project folder")
