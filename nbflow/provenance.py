"""Which code made a run: the project's git commit, whether the tree was dirty, which task notebooks differ from it.

`git` is run as a program (two short commands, no library); outside a repository, or without git, the answer is None
and lineage falls back to the hash of each notebook's code cells, which every attempt's fingerprint already holds.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

GIT_TIMEOUT = 5.0  # seconds; a hung git (a lock, a network file system) must not hold a run


def _git(root: str, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", root, *args], capture_output=True, timeout=GIT_TIMEOUT, check=False,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def _top(root: str) -> str | None:
    """The work tree holding `root`: the nearest folder with a `.git` (a folder, or a file in worktrees and submodules)."""
    here = os.path.realpath(root)
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def code_version(root: str, notebooks: Iterable[str]) -> dict[str, Any] | None:
    """{"commit", "dirty", "changed"} for the project folder `root`, or None when it is not in a git work tree.

    `dirty`: a tracked file of the repository differs from the commit (untracked files, such as the data a pipeline
    writes, do not count). `changed`: the task notebooks (absolute paths in, project-relative out) that are modified,
    staged, or not tracked at all, i.e. whose code the commit does not hold. One `git status` (~10 ms)."""
    top = _top(root)
    status = _git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal") if top else None
    if status is None or top is None:
        return None
    commit: str | None = None
    modified: set[str] = set()
    untracked: list[str] = []  # files, and folders (ending in '/') holding nothing tracked
    for entry in status.split("\0"):
        if entry.startswith("# branch.oid "):
            oid = entry.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid
        elif entry[:2] in ("1 ", "u "):
            modified.add(entry.split(" ", 8 if entry[0] == "1" else 10)[-1])
        elif entry[:2] == "2 ":
            modified.add(entry.split(" ", 9)[-1])
        elif entry[:2] == "? ":
            untracked.append(entry[2:])
    if commit is None:
        return None
    changed = []
    for path in notebooks:
        key = os.path.relpath(os.path.realpath(path), top).replace(os.sep, "/")
        if key in modified or any(key == u or (u.endswith("/") and key.startswith(u)) for u in untracked):
            changed.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return {"commit": commit, "dirty": bool(modified), "changed": sorted(changed)}


def describe(code: Mapping[str, Any] | None, notebook: str | None = None) -> str:
    """One line for people: 'git 1a2b3c4d5e6f', '+ uncommitted changes to this notebook', or the code cells' hash."""
    if not code:
        return "-"
    if code.get("commit"):
        text = f"git {code['commit'][:12]}"
        changed = code.get("changed") or []
        if notebook is not None and notebook in changed:
            return text + " + uncommitted changes to this notebook"
        if notebook is None and changed:
            return text + f" + uncommitted changes to {', '.join(changed)}"
        return text + (" (tree dirty)" if code.get("dirty") else "")
    if code.get("code_hash"):
        return f"code cells sha256 {code['code_hash'][:12]} (not in git)"
    return "-"
