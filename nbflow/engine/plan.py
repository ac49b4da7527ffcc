"""Cache keys and the run-or-skip decision for one task."""
from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import paths
from ..errors import MissingInputError, NbflowError
from ..model import Pipeline, Task
from ..paths import placeholders
from ..records import AttemptRecord, FileRecord

if TYPE_CHECKING:
    from ..store import Store

ALWAYS_INJECTED = ("run_id", "run_date")


@dataclass(frozen=True)
class Fingerprint:
    """What a task's result depends on; its hash is the cache key."""

    code: str
    parameters: Mapping[str, Any]
    reads: Mapping[str, str]  # project-relative path -> sha256 ("missing" when absent)
    upstream: Mapping[str, str]  # upstream task -> its cache key

    def as_json(self) -> str:
        return json.dumps({"code": self.code, "parameters": self.parameters, "reads": self.reads,
                           "upstream": self.upstream}, sort_keys=True, default=str)

    @property
    def key(self) -> str:
        return hashlib.sha256(self.as_json().encode()).hexdigest()


def path_safe(value: Any) -> str:
    """A parameter's value as it is written into a path: ':' becomes '-', so a sub-day run_date (2026-12-02T06:52:20)
    names a folder that every file system, archive tool and URL accepts (2026-12-02T06-52-20). The notebook itself
    still receives the real value."""
    return str(value).replace(":", "-")


def resolve(template: str, params: Mapping[str, Any], task: Task, root: str) -> str:
    """The key a reads/writes template names in this run (its {param} placeholders filled with the values' path-safe
    form)."""
    _check_set(template, params, task)
    return paths.resolve(template, {k: path_safe(params[k]) for k in placeholders(template)}, root)


def _check_set(template: str, params: Mapping[str, Any], task: Task) -> None:
    missing = placeholders(template) - set(params)
    if missing:
        name = sorted(missing)[0]
        raise NbflowError(f"{task.relpath}: path '{template}' uses {{{name}}}, which this run does not set. "
                          f"Fix: pass -p {name}=VALUE, or add {name} to [parameters] in nbflow.toml")


def path_safe_note(task: Task, params: Mapping[str, Any]) -> str:
    """Why a declared path may differ from the one the notebook built itself, when a placeholder was made path-safe."""
    changed = sorted(k for t in task.reads + task.writes for k in placeholders(t)
                     if k in params and path_safe(params[k]) != str(params[k]))
    if not changed:
        return ""
    k = changed[0]
    return (f" (paths use placeholder values made path-safe, ':' -> '-': the notebook got {k} = {params[k]!r}, the path uses "
            f"{path_safe(params[k])!r}; build it in the notebook with {k}.replace(':', '-'))")


def check_placeholders(task: Task, params: Mapping[str, Any]) -> None:
    for template in task.reads + task.writes:
        _check_set(template, params, task)


def relevant_parameters(task: Task, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters this task can see: declared, named in its code, or used in its paths."""
    used = set(task.parameters) | set(task.identifiers)
    for template in task.reads + task.writes:
        used |= placeholders(template)
    return {k: params[k] for k in sorted(params) if k in used}


def file_hash(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


Hasher = Callable[[str], "tuple[str, int]"]


class HashCache:
    """Content hashes of one run's files, by path and stat: a file a task wrote is hashed once, not again when the
    next task reads it (a chain of tasks over large files hashed each one twice)."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, int, int, int, int, int], tuple[str, int]] = {}

    def __call__(self, path: str) -> tuple[str, int]:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = file_hash(path)
        return found


def _abs(root: str, rel: str) -> str:
    return rel if os.path.isabs(rel) else os.path.join(root, rel)


def content_hash(key: str, root: str, hasher: Hasher = file_hash) -> tuple[str, int]:
    """(hash, size) of what a key names: a file's sha256 (through `hasher`, e.g. a run's HashCache), or an object's
    ETag/checksum/version from its metadata (a URL's content is never downloaded)."""
    if paths.is_url(key):
        from ..storage import stat

        digest, size, _ = stat(key)
        return digest, size
    return hasher(_abs(root, key))


def hash_reads(task: Task, params: Mapping[str, Any], root: str, hasher: Hasher = file_hash) -> list[tuple[str, str, int]]:
    """(path, sha256, size) of each file the task reads, folders and globs expanded; a path naming no file hashes as 'missing'."""
    out: list[tuple[str, str, int]] = []
    for template in task.reads:
        key = resolve(template, params, task, root)
        files = paths.list_files(key, root)
        out.extend([(p, *content_hash(p, root, hasher)) for p in files] or [(key, "missing", 0)])
    return out


def hash_writes(task: Task, params: Mapping[str, Any], root: str,
                hasher: Hasher = file_hash) -> tuple[list[tuple[str, str, int]], list[str]]:
    """(path, sha256, size) of each declared output (folders and globs expanded), and the outputs not found."""
    return hash_outputs([resolve(template, params, task, root) for template in task.writes], root, hasher)


def hash_outputs(keys: Iterable[str], root: str, hasher: Hasher = file_hash) -> tuple[list[tuple[str, str, int]], list[str]]:
    """(path, sha256, size) of each resolved output path (folders and globs expanded), and the paths not found.
    Where the attempt ran: the runner, or a Dask worker that sends the hashes back."""
    found: list[tuple[str, str, int]] = []
    missing: list[str] = []
    for key in keys:
        files = paths.list_files(key, root)
        if not files:
            missing.append(key)
        found.extend((p, *content_hash(p, root, hasher)) for p in files)
    return found, missing


def outputs_size(task: Task, params: Mapping[str, Any], root: str) -> int:
    """Bytes in the task's declared local outputs that exist (folders and globs expanded; objects on storage count 0)."""
    total = 0
    for template in task.writes:
        key = resolve(template, params, task, root)
        if paths.is_url(key):
            continue
        for p in paths.list_files(key, root):
            try:
                total += os.path.getsize(_abs(root, p))
            except OSError:
                pass
    return total


def missing_input(pipeline: Pipeline, task: Task, params: Mapping[str, Any], root: str) -> MissingInputError | None:
    """The first declared input that names no file now: the task fails at once, before a kernel starts."""
    for template in task.reads:
        key = resolve(template, params, task, root)
        if not paths.list_files(key, root):
            return missing_input_error(pipeline, task, template, key, "this run's parameters")
    return None


def missing_input_error(pipeline: Pipeline, task: Task, template: str, key: str, values: str) -> MissingInputError:
    """What to say about a read that names no file: who should write it, or the written path it was probably meant to be.

    `values`: which parameters filled the placeholders ("this run's parameters"), shown when the template has any.
    """
    folder = paths.project_key(task.folder, pipeline.root, pipeline.root)
    shown = paths.spelled_from(template, folder)
    where = f" ({paths.spelled_from(key, folder)}, with {values})" if placeholders(template) else ""
    cell = task.tag_cells.get(f"reads:{template}")
    writers = sorted({n for n, t in pipeline.tasks.items() for w in t.writes if paths.may_overlap(w, template)})
    others = [n for n in writers if n != task.name]
    if others:
        who = " and ".join(f"'{n}' ({pipeline.tasks[n].relpath})" for n in others)
        return MissingInputError(task.relpath, f"reads:{shown} names no file{where}: it is written by {who}, "
                                 f"which has not written it yet", f"run {others[0]} first (`nbflow run --to {task.name}`), "
                                 f"or check that the path matches what it writes", cell, key)
    if writers:
        return MissingInputError(task.relpath, f"reads:{shown} names no file{where}, and only this notebook writes it",
                                 "create it before the first run, or drop the reads: tag if the notebook only writes it",
                                 cell, key)
    written = {w: n for n, t in pipeline.tasks.items() for w in t.writes}
    close = difflib.get_close_matches(template, list(written), n=1, cutoff=0.6)
    fix = (f"did you mean '{paths.spelled_from(close[0], folder)}'? ({pipeline.tasks[written[close[0]]].relpath} writes it)"
           if close else "correct the path, add a writes: tag for it to the notebook that makes it, or create it before the run")
    return MissingInputError(task.relpath, f"reads:{shown} names a file that no task writes and that does not exist{where}",
                             fix, cell, key)


def fingerprint(task: Task, params: Mapping[str, Any], reads: list[tuple[str, str, int]], upstream_keys: Mapping[str, str]) -> Fingerprint:
    return Fingerprint(code=task.code_hash, parameters=relevant_parameters(task, params),
                       reads={p: h for p, h, _ in reads}, upstream={u: upstream_keys[u] for u in task.upstream if u in upstream_keys})


def outputs_intact(writes: list[FileRecord], root: str, hasher: Hasher = file_hash) -> str | None:
    """None when every recorded output still exists with its recorded hash, else why not."""
    for path, digest, size in writes:
        if paths.is_url(path):
            try:
                found = content_hash(path, root)
            except FileNotFoundError:
                return f"output {path} is missing"
            if found != (digest, size):
                return f"output {path} changed since it was written"
            continue
        full = _abs(root, path)
        if not os.path.isfile(full):
            return f"output {path} is missing"
        if os.path.getsize(full) != size or hasher(full)[0] != digest:
            return f"output {path} changed since it was written"
    return None


def why_changed(old: Mapping[str, Any] | None, new: Fingerprint) -> str:
    """A short human reason for a cache miss, comparing with the last successful fingerprint."""
    if old is None:
        return "never succeeded before"
    if old.get("code") != new.code:
        return "code changed"
    for k in sorted(set(old.get("parameters", {})) | set(new.parameters)):
        if old.get("parameters", {}).get(k) != new.parameters.get(k):
            return f"parameter {k} changed"
    for p in sorted(set(old.get("reads", {})) | set(new.reads)):
        if old.get("reads", {}).get(p) != new.reads.get(p):
            return f"input {p} changed" if p in old.get("reads", {}) and p in new.reads else f"inputs changed ({p})"
    for u in sorted(set(old.get("upstream", {})) | set(new.upstream)):
        if old.get("upstream", {}).get(u) != new.upstream.get(u):
            return f"upstream {u} changed"
    return "cache key changed"


@dataclass(frozen=True)
class Decision:
    """Run or skip one task, and why; with what the run needs to record it."""

    skip: bool
    reason: str
    fingerprint: Fingerprint
    reads: list[tuple[str, str, int]]
    last: AttemptRecord | None  # the successful attempt being reused, when skipping


def decide(store: Store, task: Task, params: Mapping[str, Any], upstream_keys: Mapping[str, str], root: str,
           force: bool, hasher: Hasher = file_hash) -> Decision:
    """Hash the task's inputs and compare with its last success: the one place the skip rule lives."""
    reads = hash_reads(task, params, root, hasher)
    fp = fingerprint(task, params, reads, upstream_keys)
    if force:
        return Decision(False, "--force", fp, reads, None)
    last = store.last_success(task.name, fp.key)
    broken = outputs_intact(store.attempt_writes(last.id), root, hasher) if last else None
    if last and not broken:
        return Decision(True, f"up to date (same code, parameters and inputs as run {last.run_id})", fp, reads, last)
    return Decision(False, broken or why_changed(store.last_fingerprint(task.name), fp), fp, reads, None)


def outside_keys(store: Store, pipeline: Pipeline, selected: set[str], keys: dict[str, str]) -> None:
    """Cache keys of upstream tasks not in this run: their last success, so a partial run can still skip."""
    for name in selected:
        for up in pipeline.tasks[name].upstream:
            if up not in selected and up not in keys:
                last = store.last_success_any(up)
                if last and last.cache_key:
                    keys[up] = last.cache_key
