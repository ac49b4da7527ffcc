"""Build and validate the DAG from tasks. Pure: no I/O."""
from __future__ import annotations

import difflib
import heapq
from collections.abc import Iterable
from dataclasses import replace

from . import paths
from .errors import CycleError, DuplicateWriterError, SelectionError, UnknownUpstreamError
from .model import Edge, Pipeline, Task

PLOOMBER = "Ploomber upstream"  # an edge from a Ploomber `upstream` declaration


def build(root: str, tasks: Iterable[Task]) -> Pipeline:
    """A frozen pipeline; raises on unknown upstream names, duplicate writers and cycles."""
    by_name = {t.name: t for t in sorted(tasks, key=lambda t: t.name)}
    edges: dict[tuple[str, str], str] = {}
    for t in by_name.values():
        for up in t.explicit_upstream:
            if up not in by_name:
                raise UnknownUpstreamError(t.relpath, f"tag 'upstream:{up}' names no task", _suggest(up, by_name),
                                           t.tag_cells.get(f"upstream:{up}"))
            edges.setdefault((up, t.name), PLOOMBER if t.ploomber and up in t.ploomber.upstream else "upstream tag")
    writers: dict[str, str] = {}
    for t in by_name.values():
        for path in t.writes:
            if path in writers and writers[path] != t.name:
                other = by_name[writers[path]]
                raise DuplicateWriterError(t.relpath, f"writes '{path}', which {other.relpath} writes too "
                                           f"({other.at(other.tag_cells.get('writes:' + path))})",
                                           "give each output one writer: rename one path, or merge the two notebooks",
                                           t.tag_cells.get(f"writes:{path}"))
            writers[path] = t.name
    readers: dict[str, list[str]] = {}
    for t in by_name.values():
        for read in t.reads:
            readers.setdefault(read, []).append(t.name)
    for path, read in paths.overlapping(writers, readers):  # the one path rule: nbflow/paths.py
        for reader in readers[read]:
            if writers[path] != reader:
                edges.setdefault((writers[path], reader), f"path {path}")
    upstream: dict[str, list[str]] = {n: [] for n in by_name}
    for (up, down) in edges:
        upstream[down].append(up)
    done = {n: replace(t, upstream=tuple(sorted(upstream[n]))) for n, t in by_name.items()}
    order = _toposort(done, edges)
    edge_list = tuple(Edge(u, d, why) for (u, d), why in sorted(edges.items()))
    return Pipeline(root=root, tasks={n: done[n] for n in order}, order=tuple(order), edges=edge_list)


def unwritten_reads(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(task, read) for each read that no task's writes may overlap: a typo, a forgotten writes: tag, or an input."""
    reads = [(n, r) for n, t in pipeline.tasks.items() for r in t.reads]
    written = {r for _, r in paths.overlapping([w for t in pipeline.tasks.values() for w in t.writes], [r for _, r in reads])}
    return [(n, r) for n, r in reads if r not in written]


def _suggest(name: str, tasks: dict[str, Task]) -> str:
    close = difflib.get_close_matches(name, list(tasks), n=3, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(f"'upstream:{c}'" for c in close) + "?"
    return f"name a task by its notebook path without .ipynb; tasks are: {', '.join(sorted(tasks)) or 'none'}"


def _toposort(tasks: dict[str, Task], edges: dict[tuple[str, str], str]) -> list[str]:
    indegree = {n: len(t.upstream) for n, t in tasks.items()}
    children: dict[str, list[str]] = {n: [] for n in tasks}
    for n, t in tasks.items():
        for up in t.upstream:
            children[up].append(n)
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for c in children[n]:
            indegree[c] -= 1
            if indegree[c] == 0:
                heapq.heappush(ready, c)
    if len(order) < len(tasks):
        cycle = _find_cycle(tasks, set(tasks) - set(order))
        raise CycleError(cycle, {n: t.relpath for n, t in tasks.items()},
                         [_edge_source(tasks, edges, up, down) for up, down in zip(cycle, cycle[1:])])
    return order


def _find_cycle(tasks: dict[str, Task], left: set[str]) -> list[str]:
    start = min(left)
    path, seen = [start], {start: 0}
    node = start
    while True:
        node = min(u for u in tasks[node].upstream if u in left)
        if node in seen:
            cycle = path[seen[node]:] + [node]
            return list(reversed(cycle))
        seen[node] = len(path)
        path.append(node)


def _edge_source(tasks: dict[str, Task], edges: dict[tuple[str, str], str], up: str, down: str) -> str:
    """Where an edge comes from, for messages: 'b.ipynb cell 3 upstream:a' or 'b.ipynb cell 2 reads:x.csv'."""
    why = edges[(up, down)]
    t = tasks[down]
    if why == PLOOMBER:
        return f"{t.relpath} {t.at(t.ploomber.cell if t.ploomber else None)} declares '{up}' upstream (Ploomber)"
    if why == "upstream tag":
        return f"{t.relpath} {t.at(t.tag_cells.get(f'upstream:{up}'))} has upstream:{up}"
    path = why.removeprefix("path ")
    read = next((k for k in t.tag_cells if k.startswith("reads:") and paths.may_overlap(path, k[6:])), f"reads:{path}")
    return f"{t.relpath} {t.at(t.tag_cells.get(read))} has {read} (written by {up})"


def select(pipeline: Pipeline, only: Iterable[str] = (), start: Iterable[str] = (), end: Iterable[str] = ()) -> list[str]:
    """Tasks chosen by --only / --from / --to (intersection of the given filters), in pipeline order."""
    chosen = set(pipeline.tasks)
    only, start, end = _names(only), _names(start), _names(end)
    for flag, names in (("--only", only), ("--from", start), ("--to", end)):
        for n in names:
            if n not in pipeline.tasks:
                close = difflib.get_close_matches(n, list(pipeline.tasks), n=3, cutoff=0.5)
                hint = f"did you mean {' or '.join(close)}?" if close else f"tasks are: {', '.join(pipeline.order)}"
                raise SelectionError(f"{flag} {n}: no such task. Fix: {hint}")
    if only:
        chosen &= set(only)
    if start:
        chosen &= set().union(*({n} | pipeline.descendants(n) for n in start))
    if end:
        chosen &= set().union(*({n} | pipeline.ancestors(n) for n in end))
    return [n for n in pipeline.order if n in chosen]


def _names(values: Iterable[str]) -> list[str]:
    return [_strip_suffix(n.strip()) for v in values for n in v.split(",") if n.strip()]


def _strip_suffix(name: str) -> str:
    """A task named by its file: 'clean.ipynb', 'clean.py' or 'clean.md' is 'clean'."""
    for suffix in (".ipynb", ".py", ".md"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
