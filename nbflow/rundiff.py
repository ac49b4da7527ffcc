"""What changed between two runs: parameters, code version, each task's outcome and data, and the executed notebooks
cell by cell. Pure: records and notebook JSON in, a JSON-ready dict out (the CLI prints it, the REST API returns it).

nbdime aligns the two notebooks' cells (it matches moved, inserted and edited cells); the comparison of a matched pair
is ours: source and text outputs as unified diffs, images and other rich outputs as hashes.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from itertools import zip_longest
from typing import Any

from .cells import cell_label
from .records import AttemptRecord, RunDetail, RunRecord, TaskRecord

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_INJECTED = "injected-parameters"
_MARKER = "papermill-error-cell-tag"
HIDDEN_PARAMETERS = ("run_id",)  # differs in every run: never a difference worth showing
Versions = Mapping[str, list[dict[str, Any]]]  # {"reads": [...], "writes": [...]}, as Store.attempt_io gives them


def run_json(run: RunRecord) -> dict[str, Any]:
    return {"id": run.id, "status": run.status, "trigger": run.trigger, "run_date": run.logical_date,
            "started": run.started_at, "duration": run.duration,
            "code": {"commit": run.code_commit, "dirty": run.code_dirty, "changed": list(run.code_changed or [])}
            if run.code_commit else None}


def parameter_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each parameter whose value differs (or is set in one run only), by name; `run_id` left out."""
    missing = object()
    out = []
    for name in sorted(set(a) | set(b)):
        va, vb = a.get(name, missing), b.get(name, missing)
        if name not in HIDDEN_PARAMETERS and va != vb:
            out.append({"name": name, "a": None if va is missing else va, "b": None if vb is missing else vb,
                        "only_in": "a" if vb is missing else "b" if va is missing else None})
    return out


def task_side(row: TaskRecord | None, attempts: list[AttemptRecord]) -> dict[str, Any] | None:
    """A task in one run: status, whether it ran (else why not), its last attempt's duration, error with cell."""
    if row is None:
        return None
    last = attempts[-1] if attempts else None
    cell = last.error_cell if last and last.error else row.error_cell
    count = last.error_execution_count if last and last.error else row.error_execution_count
    return {"status": row.status, "ran": bool(attempts), "reason": row.reason, "attempts": len(attempts),
            "duration": last.duration if last else None, "error": (last.error if last else None) or row.error,
            "cell": cell, "cell_label": cell_label(cell, count) or None, "executed": row.artifact}


def data_changes(a: Iterable[Mapping[str, Any]], b: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Files whose content hash differs between two lists of dataset versions (or that only one side has)."""
    va, vb = {v["path"]: v for v in a}, {v["path"]: v for v in b}
    out = []
    for path in sorted(set(va) | set(vb)):
        x, y = va.get(path), vb.get(path)
        if x is None or y is None or x["hash"] != y["hash"]:
            out.append({"path": path, "a": _file(x), "b": _file(y)})
    return out


def _file(v: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if v is None:
        return None
    producer = v.get("producer")
    return {"hash": v["hash"], "size": v["size"], "run_id": producer["run_id"] if producer else None}


def compare(a: RunDetail, b: RunDetail, io: Callable[[RunDetail, str], Versions | None],
            notebook: Callable[[RunDetail, str], dict[str, Any] | None], task: str | None = None) -> dict[str, Any]:
    """The whole comparison. `io(run, task)`: what the task's attempt in that run (or the attempt it reused when skipped)
    read and wrote; `notebook(run, task)`: its executed notebook's JSON, None when there is none on disk.
    Notebooks are compared for `task`, else for every task that ran in both runs."""
    rows_a, rows_b = {t.task: t for t in a.tasks}, {t.task: t for t in b.tasks}
    names = list(dict.fromkeys([*rows_a, *rows_b]))
    if task is not None:
        names = [n for n in names if n == task]
    tasks = []
    for name in names:
        att_a = [x for x in a.attempts if x.task == name]
        att_b = [x for x in b.attempts if x.task == name]
        io_a, io_b = io(a, name), io(b, name)
        entry: dict[str, Any] = {
            "task": name, "a": task_side(rows_a.get(name), att_a), "b": task_side(rows_b.get(name), att_b),
            "inputs": data_changes((io_a or {}).get("reads", []), (io_b or {}).get("reads", [])),
            "outputs": data_changes((io_a or {}).get("writes", []), (io_b or {}).get("writes", [])),
            "notebook": None,
        }
        if task is not None or (att_a and att_b):
            nb_a, nb_b = notebook(a, name), notebook(b, name)
            if nb_a is not None and nb_b is not None:
                entry["notebook"] = notebook_diff(nb_a, nb_b)
        tasks.append(entry)
    return {"a": run_json(a.run), "b": run_json(b.run), "parameters": parameter_changes(a.run.parameters, b.run.parameters),
            "tasks": tasks}


# notebooks

def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _cells(nb: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The executed notebook's cells without papermill's error banners, each with its label."""
    out = []
    index = 0
    for cell in nb.get("cells", []):
        tags = set(cell.get("metadata", {}).get("tags", []) or [])
        if _MARKER in tags:
            continue
        if _INJECTED in tags:
            label = "injected parameters"
        else:
            label = cell_label(index, cell.get("execution_count"))
            index += 1
        out.append({**cell, "_label": label})
    return out


def _stripped(cell: Mapping[str, Any]) -> dict[str, Any]:
    """What nbdime aligns on: the cell's type and source. Outputs, ids, execution counts and timing metadata are left
    out: two runs of one notebook differ in their outputs, not in which cell is which, and nbdime's approximate
    comparison of every output pair is most of its time (seconds for the example pipeline)."""
    stripped: dict[str, Any] = {"cell_type": cell.get("cell_type", "code"), "metadata": {}, "source": _text(cell.get("source"))}
    if stripped["cell_type"] == "code":
        stripped.update(outputs=[], execution_count=None)
    return stripped


def _output_text(cell: Mapping[str, Any]) -> str:
    """The cell's outputs as a terminal shows them: streams, text/plain of values and displays, tracebacks."""
    parts = []
    for o in cell.get("outputs", []):
        kind = o.get("output_type")
        if kind == "stream":
            parts.append(_text(o.get("text")))
        elif kind in ("execute_result", "display_data"):
            parts.append(_text(o.get("data", {}).get("text/plain")))
        elif kind == "error":
            parts.append(_ANSI.sub("", "\n".join(o.get("traceback") or [f"{o.get('ename')}: {o.get('evalue')}"])))
        if parts and parts[-1] and not parts[-1].endswith("\n"):
            parts[-1] += "\n"
    return "".join(parts)


def _rich(cell: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(mime type, sha256) of each rich output (images, HTML, JSON...), in order."""
    out = []
    for o in cell.get("outputs", []):
        for mime, value in sorted((o.get("data") or {}).items()):
            if mime != "text/plain":
                out.append((mime, hashlib.sha256(_text(value).encode()).hexdigest()))
    return out


def _unified(a: str, b: str, name_a: str, name_b: str) -> str | None:
    if a == b:
        return None
    lines = difflib.unified_diff(a.splitlines(), b.splitlines(), name_a, name_b, lineterm="", n=2)
    return "\n".join(lines)


def _pairs(entries: Iterable[Any], n_a: int, n_b: int) -> list[tuple[int | None, int | None]]:
    """Matched cell indexes (a, b) from nbdime's diff of the cell list: None on one side for an added or removed cell."""
    pairs: list[tuple[int | None, int | None]] = []
    ia = ib = 0
    for e in entries:
        while ia < e["key"]:
            pairs.append((ia, ib))
            ia, ib = ia + 1, ib + 1
        if e["op"] == "addrange":
            for _ in e["valuelist"]:
                pairs.append((None, ib))
                ib += 1
        elif e["op"] == "removerange":
            for _ in range(e["length"]):
                pairs.append((ia, None))
                ia += 1
        elif e["op"] == "patch":
            pairs.append((ia, ib))
            ia, ib = ia + 1, ib + 1
    while ia < n_a and ib < n_b:
        pairs.append((ia, ib))
        ia, ib = ia + 1, ib + 1
    pairs += [(i, None) for i in range(ia, n_a)] + [(None, j) for j in range(ib, n_b)]
    return pairs


def notebook_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Cell by cell: added, removed and modified cells, with source and text-output diffs and changed rich outputs."""
    from .executors.attempt import import_nbformat

    import_nbformat()
    import nbformat
    from nbdime import diff_notebooks

    cells_a, cells_b = _cells(a), _cells(b)
    nb_a, nb_b = ({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [_stripped(c) for c in cells]}
                  for cells in (cells_a, cells_b))
    found = diff_notebooks(nbformat.from_dict(nb_a), nbformat.from_dict(nb_b))  # type: ignore[no-untyped-call]
    entries: list[Any] = next((e["diff"] for e in found if e["key"] == "cells"), [])
    changes, unchanged = [], 0
    for ia, ib in _pairs(entries, len(cells_a), len(cells_b)):
        x = cells_a[ia] if ia is not None else None
        y = cells_b[ib] if ib is not None else None
        label_a, label_b = (x or {}).get("_label"), (y or {}).get("_label")
        source = _unified(_text((x or {}).get("source")), _text((y or {}).get("source")), f"a {label_a or '(none)'}",
                          f"b {label_b or '(none)'}")
        outputs = _unified(_output_text(x or {}), _output_text(y or {}), f"a {label_a or '(none)'} output",
                           f"b {label_b or '(none)'} output")
        rich = [{"mime": (ra or rb)[0], "a": ra[1] if ra else None, "b": rb[1] if rb else None}
                for ra, rb in zip_longest(_rich(x or {}), _rich(y or {})) if ra != rb]
        if x is not None and y is not None and source is None and outputs is None and not rich:
            unchanged += 1
            continue
        change = "added" if x is None else "removed" if y is None else "modified"
        changes.append({"a": label_a, "b": label_b, "change": change, "cell_type": (x or y or {}).get("cell_type"),
                        "source": source, "outputs": outputs, "rich": rich})
    return {"cells": changes, "unchanged": unchanged}
