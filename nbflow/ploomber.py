"""Ploomber projects, read as they are: a `pipeline.yaml` (with `env.yaml` and `{{placeholders}}`), or scripts and
notebooks whose parameters cell declares `upstream = [...]` and `product = ...` (a "directory" project).

Upstream lists become edges, products become writes (and the non-notebook products of a task's upstream become its
reads), and each task gets `upstream = {name: product}` and `product = ...` injected after its parameters cell, as
Ploomber injects them, with absolute paths. Reads files only (pipeline.yaml, env.yaml); nothing runs here.
"""
from __future__ import annotations

import ast
import difflib
import getpass
import hashlib
import json
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import paths
from .errors import NotebookError, UnknownUpstreamError
from .model import PloomberDecl, Task

SPEC = "pipeline.yaml"
ENV = "env.yaml"
NOTEBOOK_SOURCES = (".py", ".ipynb", ".md")
NOTEBOOK_PRODUCTS = (".ipynb", ".html")
# pipeline.yaml task keys: what nbflow honours, what it can ignore (they change nothing nbflow does), and the rest
TASK_KEYS = {"source", "name", "product", "params", "upstream", "local_execution", "nb_product_key"}
TASK_KEYS_IGNORED = {"static_analysis", "check_if_kernel_installed", "nbconvert_export_kwargs", "papermill_params",
                     "debug_mode", "ext_in", "product_class"}
TOP_KEYS = {"tasks", "meta", "clients", "executor", "serializer", "unserializer", "config"}
_BUILTIN_LATER = ("now", "git", "git_hash", "git_location")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class SpecTask:
    """One task of pipeline.yaml, placeholders rendered, paths absolute."""

    name: str
    source: str
    product: str | Mapping[str, str] | None  # None: taken from the parameters cell (meta.extract_product)
    params: Mapping[str, Any]
    upstream: tuple[str, ...] | None  # None: taken from the parameters cell (meta.extract_upstream, the default)
    cwd: str
    nb_key: str = "nb"


@dataclass(frozen=True)
class Spec:
    path: str  # absolute path of pipeline.yaml
    shown: str  # as messages show it
    tasks: tuple[SpecTask, ...]
    extract_product: bool = False
    sources: frozenset[str] = field(default_factory=frozenset)


def find_spec(root: str, notebooks: str) -> str | None:
    """The project's pipeline.yaml: in the project folder, else in the notebooks folder."""
    for folder in dict.fromkeys((root, notebooks)):
        path = os.path.join(folder, SPEC)
        if os.path.isfile(path):
            return path
    return None


def load_spec(path: str, root: str) -> Spec:
    """pipeline.yaml with env.yaml's values and Ploomber's built-in placeholders rendered."""
    shown = os.path.relpath(path, root)
    folder = os.path.dirname(path)
    raw = _yaml(path, shown)
    if isinstance(raw, list):  # Ploomber's first format: the list of tasks alone
        raw = {"tasks": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), list):
        raise NotebookError(shown, "has no 'tasks' list", "list the tasks under `tasks:` as Ploomber does")
    for key in raw:
        if key not in TOP_KEYS:
            raise NotebookError(shown, f"top-level key '{key}' is not supported by nbflow",
                                "remove it (hooks such as on_finish become `check` cells in nbflow)")
    values = _builtins(folder, root)
    env_path = os.path.join(folder, ENV)
    if os.path.isfile(env_path):
        env = _yaml(env_path, os.path.relpath(env_path, root)) or {}
        if not isinstance(env, dict):
            raise NotebookError(os.path.relpath(env_path, root), "is not a mapping of names to values", "write `key: value` lines")
        values = {**values, **render(env, values, os.path.relpath(env_path, root))}
    meta = raw.get("meta") or {}
    extract_upstream = bool(meta.get("extract_upstream", True))
    extract_product = bool(meta.get("extract_product", False))
    tasks = tuple(_spec_task(i, t, values, folder, shown, extract_upstream, extract_product) for i, t in enumerate(raw["tasks"]))
    seen: dict[str, int] = {}
    for i, t in enumerate(tasks):
        if t.name in seen:
            raise NotebookError(shown, f"tasks {seen[t.name]} and {i} are both named '{t.name}'", "give one of them a `name:`")
        seen[t.name] = i
    return Spec(path, shown, tasks, extract_product, frozenset(t.source for t in tasks))


def _yaml(path: str, shown: str) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise NotebookError(shown, f"not valid YAML ({e})".replace("\n", " "), "fix the syntax at that line") from None


def _builtins(folder: str, root: str) -> dict[str, Any]:
    """Ploomber's built-in placeholders that do not change between runs."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    return {"here": folder, "root": folder, "cwd": root, "user": user}


def render(value: Any, values: Mapping[str, Any], where: str) -> Any:
    """`{{name}}` and `{{a.b}}` placeholders filled from `values`; a string that is one placeholder keeps the value's type."""
    if isinstance(value, dict):
        return {k: render(v, values, where) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, values, where) for v in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    whole = _PLACEHOLDER.fullmatch(value.strip())
    if whole:
        return _lookup(whole.group(1), values, where)
    return _PLACEHOLDER.sub(lambda m: str(_lookup(m.group(1), values, where)), value)


def _lookup(expr: str, values: Mapping[str, Any], where: str) -> Any:
    name = expr.strip()
    if name in _BUILTIN_LATER:
        raise NotebookError(where, f"placeholder '{{{{{name}}}}}' changes at every run, so no task could ever be up to date",
                            "use nbflow's run parameters instead (`{run_date}`, `{run_id}` in a notebook's tags)")
    if not _DOTTED.fullmatch(name):
        raise NotebookError(where, f"placeholder '{{{{{expr}}}}}' is a Jinja expression, which nbflow does not evaluate",
                            "use plain `{{name}}` or `{{section.name}}` placeholders with values from env.yaml")
    found: Any = values
    for part in name.split("."):
        if not isinstance(found, Mapping) or part not in found:
            keys = ", ".join(sorted(values)) or "none"
            raise NotebookError(where, f"placeholder '{{{{{name}}}}}' has no value (known: {keys})",
                                f"add `{name.split('.')[0]}: ...` to {ENV} next to {SPEC}")
        found = found[part]
    return found


def _spec_task(i: int, raw: Any, values: Mapping[str, Any], folder: str, shown: str, extract_upstream: bool,
               extract_product: bool) -> SpecTask:
    where = f"{shown}, task {i}"
    if not isinstance(raw, dict) or "source" not in raw:
        raise NotebookError(where, "has no `source:`", "name the script or notebook the task runs")
    raw = render(raw, values, where)
    source = str(raw["source"])
    ext = os.path.splitext(source)[1]
    function = ext not in NOTEBOOK_SOURCES and ext not in (".sql", ".R", ".r") and "/" not in source
    name = str(raw.get("name") or (source.rsplit(".", 1)[-1] if function else os.path.splitext(os.path.basename(source))[0]))
    where = f"{shown}, task '{name}'"
    for key in raw:
        if key not in TASK_KEYS | TASK_KEYS_IGNORED:
            raise NotebookError(where, f"key '{key}' is not supported by nbflow",
                                f"remove it; nbflow honours {', '.join(sorted(TASK_KEYS))}")
    if ext not in NOTEBOOK_SOURCES:
        kind = "a Python function" if function else "an SQL file" if ext == ".sql" else f"a {ext or 'extension-less'} file"
        raise NotebookError(where, f"source '{source}' is {kind}; nbflow runs notebooks and scripts ({', '.join(NOTEBOOK_SOURCES)})",
                            "call that code from a script task, or keep this task in Ploomber")
    path = os.path.normpath(os.path.join(folder, os.path.expanduser(source)))
    if not os.path.isfile(path):
        raise NotebookError(where, f"source '{source}' does not exist", "correct the path (relative to the folder of pipeline.yaml)")
    product = raw.get("product")
    if product is None and not extract_product:
        raise NotebookError(where, "has no `product:`",
                            "declare the executed notebook and other outputs, e.g. `product: {nb: output/x.ipynb}`")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise NotebookError(where, "`params:` is not a mapping", "write `params: {name: value}`")
    upstream = raw.get("upstream")
    ups = None if upstream is None and extract_upstream else _names(upstream, where)
    cwd = os.path.dirname(path) if raw.get("local_execution") else folder
    nb_key = str(raw.get("nb_product_key", "nb"))
    return SpecTask(name, path, None if product is None else _product(product, folder, where), params, ups, cwd, nb_key)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, dict):
        value = list(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise NotebookError(where, f"upstream {value!r} is not a list of task names", "write e.g. upstream = ['get', 'clean'] or None")


def _product(value: Any, base: str, where: str) -> str | dict[str, str]:
    """A product with absolute paths (relative ones are relative to `base`)."""
    if isinstance(value, str):
        return _abs(value, base)
    if isinstance(value, dict) and value and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return {k: _abs(v, base) for k, v in value.items()}
    raise NotebookError(where, f"product {value!r} is not a path or a mapping of names to paths",
                        "write e.g. product = {'nb': 'output/x.ipynb', 'data': 'output/x.csv'} (nbflow runs file products only)")


def _abs(path: str, base: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def declared(source: str, shown: str, cell: int) -> tuple[Any, Any] | None:
    """(upstream, product) assigned as literals in a parameters cell that assigns both; None when it does not declare them."""
    tree = ast.parse(source)  # the caller already parsed it: it is valid Python
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in ("upstream", "product"):
                    try:
                        found[target.id] = ast.literal_eval(node.value)
                    except (ValueError, TypeError, SyntaxError, RecursionError):
                        raise NotebookError(shown, f"`{target.id} = ...` in the parameters cell is not a literal",
                                            f"write the {target.id} out, e.g. upstream = ['get'] and product = "
                                            "{'nb': 'output/x.ipynb'}", cell) from None
    if set(found) != {"upstream", "product"}:
        return None
    return found["upstream"], found["product"]


def declaration(cell_source: str, shown: str, cell: int | None, folder: str, spec_task: SpecTask | None,
                spec: Spec | None) -> PloomberDecl | None:
    """A task's Ploomber declaration: from pipeline.yaml (with what its parameters cell declares), or from the
    parameters cell alone; None for a notebook that declares nothing."""
    in_cell = declared(cell_source, shown, cell) if cell is not None else None
    if spec_task is not None:
        assert spec is not None
        upstream = spec_task.upstream
        if upstream is None:
            upstream = _names(in_cell[0], f"{shown}, cell {cell}") if in_cell else ()
        product = spec_task.product
        if product is None:  # meta.extract_product
            if not in_cell or in_cell[1] is None:
                raise NotebookError(shown, "declares no `product` in its parameters cell, and pipeline.yaml has none for it",
                                    "add `product:` to the task in pipeline.yaml", cell)
            product = _product(in_cell[1], os.path.dirname(spec.path), f"{shown}, cell {cell}")
        return PloomberDecl("pipeline.yaml", upstream, product, dict(spec_task.params), spec_task.nb_key, cell)
    if in_cell is None:
        return None
    if in_cell[1] is None:
        raise NotebookError(shown, "declares `product = None` outside pipeline.yaml, so nbflow cannot tell what it writes",
                            "write its products, e.g. product = {'nb': 'output/x.ipynb', 'data': 'output/x.csv'}, or "
                            "list the task in pipeline.yaml", cell)
    where = f"{shown}, cell {cell}"
    return PloomberDecl("parameters cell", _names(in_cell[0], where), _product(in_cell[1], folder, where), {}, "nb", cell)


def product_paths(decl: PloomberDecl) -> list[str]:
    product = decl.product
    if product is None:
        return []
    return [product] if isinstance(product, str) else list(product.values())


def notebook_product(decl: PloomberDecl) -> str | None:
    """Where the executed notebook goes: the product itself when it is one path, else its `nb` key."""
    if isinstance(decl.product, str):
        return decl.product
    return decl.product.get(decl.nb_key) if decl.product else None


def apply(task: Task, decl: PloomberDecl, root: str) -> Task:
    """A task with its Ploomber declaration's products as writes, its notebook product, and what is injected
    (upstream follows in `resolve`, once every task is known)."""
    nb = notebook_product(decl)
    if nb is not None and not nb.endswith(NOTEBOOK_PRODUCTS):
        raise NotebookError(task.relpath, f"its notebook product '{nb}' is neither .ipynb nor .html",
                            "name the executed notebook output/x.ipynb or output/x.html", decl.cell)
    base = task.folder
    writes = [paths.project_key(p, base, root) for p in product_paths(decl)]
    cells = dict(task.tag_cells)
    for w in writes:
        cells.setdefault(f"writes:{w}", decl.cell if decl.cell is not None else 0)
    injected = {**decl.params, "product": decl.product}
    declared_as = json.dumps([injected, task.cwd], sort_keys=True, default=str)  # a changed product or param re-runs it
    code_hash = hashlib.sha256(f"{task.code_hash}\n{declared_as}".encode()).hexdigest()
    return replace(task, ploomber=decl, code_hash=code_hash, tagged=True,
                   writes=tuple(dict.fromkeys((*task.writes, *writes))), tag_cells=cells,
                   injected=injected, notebook_copies=(nb,) if nb else (),
                   output_dirs=tuple(sorted({os.path.dirname(p) for p in product_paths(decl)})),
                   parameters=tuple(p for p in task.parameters if p not in injected and p != "upstream"),
                   parameter_defaults={k: v for k, v in task.parameter_defaults.items() if k not in injected and k != "upstream"})


def resolve(tasks: list[Task], root: str) -> list[Task]:
    """Ploomber's upstream names become edges (a name is a task's file stem, looked up first in the declaring file's
    own folder), the upstream's products are injected and, but for its notebook, read."""
    by_name = {t.name: t for t in tasks}
    out = []
    for t in tasks:
        decl = t.ploomber
        if decl is None:
            out.append(t)
            continue
        folder = posixpath.dirname(t.name)
        names, upstream, reads = [], {}, []
        for written in decl.upstream:
            name = next((c for c in (posixpath.join(folder, written) if folder else written, written) if c in by_name), None)
            if name is None:
                close = difflib.get_close_matches(written, list(by_name), n=3, cutoff=0.5)
                fix = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else \
                    f"name a task by its file name without extension; tasks are: {', '.join(sorted(by_name))}"
                raise UnknownUpstreamError(t.relpath, f"upstream {list(decl.upstream)!r} names '{written}', which is no task",
                                           fix, decl.cell)
            names.append(name)
            up = by_name[name]
            upstream[written] = _product_of(up, root)
            if up.ploomber is not None:
                nb = notebook_product(up.ploomber)
                reads += [paths.project_key(p, up.folder, root) for p in product_paths(up.ploomber) if p != nb]
        cells = dict(t.tag_cells)
        for n in names:
            cells.setdefault(f"upstream:{n}", decl.cell if decl.cell is not None else 0)
        for r in reads:
            cells.setdefault(f"reads:{r}", decl.cell if decl.cell is not None else 0)
        injected = {**t.injected, "upstream": upstream} if decl.upstream else dict(t.injected)
        out.append(replace(t, ploomber=replace(decl, upstream=tuple(names)), injected=injected, tag_cells=cells,
                           explicit_upstream=tuple(dict.fromkeys((*t.explicit_upstream, *names))),
                           reads=tuple(dict.fromkeys((*t.reads, *reads)))))
    return out


def _product_of(task: Task, root: str) -> Any:
    """What Ploomber injects for an upstream task: its product; for a task declared with nbflow tags, its writes."""
    if task.ploomber is not None:
        return task.ploomber.product
    written = [w if posixpath.isabs(w) else os.path.join(root, w) for w in task.writes]
    return written[0] if len(written) == 1 else written
