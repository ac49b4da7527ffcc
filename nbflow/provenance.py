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


def code_version(root: str, notebooks: Iterable[str]) -> dict[str, Any] | None:
    """{"commit", "dirty", "changed"} for the project folder `root`, or None when it is not in a git work tree.

    `dirty`: a tracked file of the repository differs from the commit (untracked files, such as the data a pipeline
    writes, do not count). `changed`: the task notebooks (absolute paths in, project-relative out) that are modified,
    staged, or not tracked at all, i.e. whose code the commit does not hold."""
    status = _git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=no")
    if status is None:
        return None
    commit: str | None = None
    modified: set[str] = set()
    for entry in status.split("\0"):
        if entry.startswith("# branch.oid "):
            oid = entry.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid
        elif entry[:2] in ("1 ", "2 ", "u "):
            modified.add(entry.split(" ")[-1])
    top = _git(root, "rev-parse", "--show-toplevel")
    if commit is None or top is None:
        return None
    top = top.strip()
    paths = {os.path.realpath(p): p for p in notebooks}
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z", "--full-name", "--", "*.ipynb") or ""
    differ = {os.path.realpath(os.path.join(top, p)) for p in modified | set(filter(None, untracked.split("\0")))}
    changed = sorted(os.path.relpath(paths[p], root).replace(os.sep, "/") for p in paths if p in differ)
    return {"commit": commit, "dirty": bool(modified), "changed": changed}


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
