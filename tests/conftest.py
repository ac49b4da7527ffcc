"""Shared fixtures: small notebook projects built in temp folders."""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FIXTURES = HERE / "notebooks"
REPO = HERE.parent

Cell = "str | tuple[str, Sequence[str]]"


def write_notebook(path: Path, cells: Iterable[object], kernel: str = "python3") -> Path:
    """Write a minimal nbformat-4 notebook; each cell is source or (source, tags); '#md ' starts markdown."""
    out = []
    for cell in cells:
        source, tags = (cell, []) if isinstance(cell, str) else cell  # type: ignore[misc]
        kind = "markdown" if source.startswith("#md ") else "code"
        entry = {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {},
                 "source": source[4:] if kind == "markdown" else source}
        if kind == "code":
            entry.update(outputs=[], execution_count=None)
        out.append(entry)
    nb = {"cells": out, "metadata": {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"},
                                     "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll `predicate` every 0.1 s; fail the test naming `what` if it stays false for `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def exited(pid: int) -> bool:
    """Whether the process has ended: gone, or a zombie. An orphan that exited stays a zombie until the machine's init
    reaps it, which some inits do late (a periodic sweep) or never: that is not the product leaving a process behind."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stop_processes_under(root: Path) -> None:
    """Kill what a test left running in `root` (runners a server started in their own sessions, their kernels)."""
    import psutil

    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and Path(proc.cwd()).is_relative_to(root):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            continue


@pytest.fixture
def make_nb(tmp_path: Path):
    def make(name: str, cells: Iterable[object], kernel: str = "python3") -> Path:
        return write_notebook(tmp_path / f"{name}.ipynb", cells, kernel)

    return make


@pytest.fixture
def fixture_project(tmp_path: Path):
    """Copy chosen fixture notebooks from tests/notebooks into a fresh project folder."""

    def copy(*names: str, config: str | None = None) -> Path:
        for n in names:
            shutil.copy(FIXTURES / f"{n}.ipynb", tmp_path / f"{n}.ipynb")
        if config is not None:
            (tmp_path / "nbflow.toml").write_text(config)
        return tmp_path

    return copy


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A temp copy of the example pipeline in notebooks/ with its settings."""
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("data", ".ipynb_checkpoints"))
    (tmp_path / "nbflow.toml").write_text('notebooks = "notebooks"\njobs = 2\n[parameters]\nsample_size = 2000\n')
    return tmp_path


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch):
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.setenv("COLUMNS", "160")
    os.environ.pop("NBFLOW_RUN_ID", None)
