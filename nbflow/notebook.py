"""Find the project's notebooks and read each one into a Task. Reads JSON only: no nbformat, no kernel."""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from collections.abc import Iterator
from typing import Any

from .cells import cell_label
from .config import policy_from
from .errors import NotebookError, TagError
from .model import Config, Task
from .paths import matches, project_key
from .tags import parse_tag

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PRUNE = {"node_modules", "__pycache__", "site-packages"}


def discover(config: Config) -> list[str]:
    """Absolute paths of the notebooks that are tasks, sorted."""
    skip_dirs = {os.path.normpath(p) for p in (os.path.dirname(config.store), config.artifacts)}
    found = []
    for folder, dirs, files in os.walk(config.notebooks):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _PRUNE
                         and os.path.join(folder, d) not in skip_dirs)
        for name in files:
            if not name.endswith(".ipynb"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), config.notebooks).replace(os.sep, "/")
            if any(matches(p, rel) for p in config.include) and not any(matches(p, rel) for p in config.exclude):
                found.append(os.path.join(folder, name))
    return sorted(found)


def load_json(path: str, shown: str) -> dict[str, Any]:
    """The notebook's JSON; NotebookError saying what is wrong with a file that is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
    except json.JSONDecodeError as e:
        raise NotebookError(shown, f"not valid notebook JSON (line {e.lineno}, column {e.colno}: {e.msg})",
                            "restore the file from version control or re-save it from JupyterLab") from None
    except UnicodeDecodeError:
        raise NotebookError(shown, "not UTF-8 text", "re-save the notebook from JupyterLab") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(shown, "has no 'cells' list: not an nbformat 4 notebook",
                            "convert it with `jupyter nbconvert --to notebook` or exclude it in nbflow.toml")
    return nb


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def normalized_code(cells: list[dict[str, Any]]) -> str:
    """Code cells' source with trailing spaces and blank edges removed: outputs, metadata and markdown do not count."""
    parts = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        lines = [line.rstrip() for line in _source(cell).strip("\n").splitlines()]
        text = "\n".join(lines).strip("\n")
        if text:
            parts.append(text)
    return "\n\n# %%\n\n".join(parts)


def read_task(path: str, config: Config) -> Task:
    """Compile one notebook file into a Task."""
    shown = os.path.relpath(path, config.root)
    name = os.path.relpath(path, config.notebooks).replace(os.sep, "/")[: -len(".ipynb")]
    nb = load_json(path, shown)
    nb_dir = os.path.dirname(path)
    upstream: list[str] = []
    reads: list[str] = []
    writes: list[str] = []
    checks: list[int] = []
    params: list[str] = []
    defaults: dict[str, Any] = {}
    params_cell: int | None = None
    overrides: dict[str, Any] = {}
    tag_cells: dict[str, int] = {}
    tagged = False
    for index, cell, tags in _cells(nb, shown):
        for raw in tags:
            tag = parse_tag(raw, shown, index)
            if tag is None:
                continue
            tagged = True
            if tag.kind == "upstream":
                upstream.append(str(tag.value))
                tag_cells.setdefault(f"upstream:{tag.value}", index)
            elif tag.kind in ("reads", "writes"):
                rel = project_key(str(tag.value), nb_dir, config.root)
                (reads if tag.kind == "reads" else writes).append(rel)
                tag_cells.setdefault(f"{tag.kind}:{rel}", index)
            elif tag.kind == "check":
                if cell.get("cell_type") != "code":
                    raise TagError(shown, "tag 'check' is on a markdown cell", "move it to the code cell that asserts", index)
                checks.append(index)
            elif tag.kind == "parameters":
                if params_cell is not None:
                    raise TagError(shown, f"a second 'parameters' cell (the first is {cell_label(params_cell)})",
                                   "keep one parameters cell: papermill injects after the first", index)
                params_cell = index
                params, defaults = _assignments(_source(cell), shown, index)
            else:
                overrides[tag.kind] = tag.value
    policy = policy_from(policy_from(config.defaults, config.tasks.get(name, {})), overrides)
    kernel = policy.kernel or _kernel_name(nb, shown) or "python3"
    code = normalized_code(nb["cells"])
    return Task(
        name=name, path=path, relpath=shown,
        explicit_upstream=tuple(dict.fromkeys(upstream)),
        reads=tuple(dict.fromkeys(reads)), writes=tuple(dict.fromkeys(writes)),
        check_cells=tuple(checks), parameters=tuple(params), parameter_defaults=defaults, parameters_cell=params_cell,
        code_hash=hashlib.sha256(f"{kernel}\n{code}".encode()).hexdigest(),
        identifiers=frozenset(_IDENT.findall(code)), kernel=kernel, policy=policy, tag_cells=tag_cells, tagged=tagged,
    )


def _cells(nb: dict[str, Any], shown: str) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
    """Each cell with its index and its tags, or a NotebookError naming the cell whose structure is broken."""
    for index, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict):
            raise NotebookError(shown, "cell is not a JSON object", "re-save the notebook from JupyterLab", index)
        metadata = cell.get("metadata", {})
        if not isinstance(metadata, dict):
            raise NotebookError(shown, f'the cell\'s "metadata" is {json.dumps(metadata)}, not an object',
                                'write "metadata": {} (or re-save the notebook from JupyterLab)', index)
        tags = metadata.get("tags", [])
        if tags is None:
            tags = []
        if isinstance(tags, str):
            raise NotebookError(shown, f'the cell\'s "tags" is the string {json.dumps(tags)}, not a list, so no tag is read',
                                f'write "tags": [{json.dumps(tags)}] (JupyterLab\'s property inspector writes a list)', index)
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise NotebookError(shown, f'the cell\'s "tags" is {json.dumps(tags)}: not a list of strings',
                                'write "tags": ["upstream:clean"] with each tag a string', index)
        yield index, cell, tags


def _kernel_name(nb: dict[str, Any], shown: str) -> str | None:
    """The kernel the notebook asks for (metadata.kernelspec.name); NotebookError when that field is malformed."""
    metadata = nb.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise NotebookError(shown, 'the notebook\'s "metadata" is not an object', 're-save the notebook from JupyterLab')
    spec = metadata.get("kernelspec") or {}
    if isinstance(spec, str):
        raise NotebookError(shown, f'"kernelspec" in the notebook\'s metadata is the string {json.dumps(spec)}, not an object',
                            f'write "kernelspec": {{"name": {json.dumps(spec)}, "display_name": {json.dumps(spec)}}}, '
                            f'or pick the kernel in JupyterLab (Kernel > Change Kernel) and save')
    if not isinstance(spec, dict) or not isinstance(spec.get("name", ""), str):
        raise NotebookError(shown, '"kernelspec" in the notebook\'s metadata is not an object with a "name"',
                            'pick the kernel in JupyterLab (Kernel > Change Kernel) and save')
    return spec.get("name") or None


def _assignments(source: str, shown: str, index: int) -> tuple[list[str], dict[str, Any]]:
    """The names the parameters cell assigns, and their values: the literal, else the expression's source text."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise NotebookError(shown, f"the parameters cell does not parse as Python (line {e.lineno}: {e.msg})",
                            "keep plain assignments like `sample_size = 100` in it", index) from None
    names: list[str] = []
    values: dict[str, Any] = {}
    for node in tree.body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for t in targets:
            if isinstance(t, ast.Name):
                names.append(t.id)
                if node.value is not None:  # `x: int` declares without a value
                    values[t.id] = _literal(node.value, source)
    return names, values


def _literal(node: ast.expr, text: str) -> Any:
    """A JSON-compatible literal value of an expression, else its source text."""
    try:
        value = ast.literal_eval(node)
        json.dumps(value)
        return value
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return ast.get_source_segment(text, node)
