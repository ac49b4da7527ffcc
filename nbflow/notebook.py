"""Find the project's notebooks and read each one into a Task. Reads JSON (and, for text notebooks, jupytext) only:
no kernel, no papermill; a project of .ipynb files imports neither jupytext nor nbformat."""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from . import ploomber, textnb
from .cells import cell_label
from .config import policy_from
from .errors import NotebookError, TagError
from .model import Config, Task
from .paths import matches, project_key
from .resources import parse_named
from .tags import parse_tag

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PRUNE = {"node_modules", "__pycache__", "site-packages"}


def discover(config: Config) -> list[str]:
    """Absolute paths of the notebook files under the notebooks folder, sorted: each `.ipynb`, and each `.py`/`.md`
    file that is a jupytext notebook (a plain module is not one). Which of them are tasks: `read_tasks`."""
    skip_dirs = {os.path.normpath(p) for p in (os.path.dirname(config.store), config.artifacts)}
    found = []
    for folder, dirs, files in os.walk(config.notebooks):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _PRUNE
                         and os.path.join(folder, d) not in skip_dirs)
        for name in files:
            if textnb.notebook_suffix(name) is None:
                continue
            rel = os.path.relpath(os.path.join(folder, name), config.notebooks).replace(os.sep, "/")
            if any(matches(p, rel) for p in config.include) and not any(matches(p, rel) for p in config.exclude):
                full = os.path.join(folder, name)
                if textnb.is_text(name) and not _text_notebook(full):
                    continue
                found.append(full)
    return sorted(found)


def _text_notebook(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return textnb.looks_like_notebook(path, f.read())
    except (OSError, UnicodeDecodeError):
        return False


def read_tasks(config: Config, contents: Mapping[str, str] | None = None) -> list[Task]:
    """Every task of the project, Ploomber declarations resolved.

    A paired notebook (x.ipynb with x.py or x.md, by name or by jupytext's `formats`) is one task read from its text
    file, the file jupytext itself takes the cells from; a notebook that is another task's Ploomber notebook product
    is that task's output, not a task. `contents`: file text to read instead of the disk's (an edit being checked)."""
    spec_path = ploomber.find_spec(config.root, config.notebooks)
    spec = ploomber.load_spec(spec_path, config.root) if spec_path else None
    found = [p for p in discover(config) if spec is None or p not in spec.sources]

    def read(paths: list[str]) -> list[Task]:
        out = []
        for p in paths:
            try:
                out.append(read_task(p, config, contents, spec=spec))
            except _NotATask:
                continue
        return out

    tasks = read([p for p in found if textnb.is_text(p)])
    if spec is not None:
        tasks += [read_task(t.source, config, contents, t, spec) for t in spec.tasks]
    taken = {t.paired for t in tasks if t.paired} | {c for t in tasks for c in t.notebook_copies}
    tasks += read([p for p in found if not textnb.is_text(p) and p not in taken])
    products = {c for t in tasks for c in t.notebook_copies}
    tasks = [t for t in tasks if t.path not in products]
    names: dict[str, Task] = {}
    for t in tasks:
        if t.name in names:
            raise NotebookError(t.relpath, f"is task '{t.name}', and so is {names[t.name].relpath}",
                                "rename one of the files (or give the pipeline.yaml task another `name:`)")
        names[t.name] = t
    try:
        return ploomber.resolve(tasks, config.root)
    except NotebookError as e:
        raise located(e, tasks) from None


def located(err: NotebookError, tasks: list[Task]) -> NotebookError:
    """The error naming the line of its cell too, when it is about a text notebook."""
    task = next((t for t in tasks if t.relpath == err.notebook), None)
    if task is None or err.cell is None or not 0 <= err.cell < len(task.cell_lines):
        return err
    return err.at_line(task.cell_lines[err.cell])


class _NotATask(Exception):
    """A notebook file that is not a task (a Ploomber script that pipeline.yaml does not list)."""


def task_name(path: str, config: Config) -> str:
    """A notebook's task name: its path under the notebooks folder without its suffix ('etl/clean')."""
    rel = os.path.relpath(path, config.notebooks).replace(os.sep, "/")
    return rel[: -len(textnb.notebook_suffix(rel) or "")] if textnb.notebook_suffix(rel) else rel


def load_json(path: str, shown: str) -> dict[str, Any]:
    """The notebook's JSON; NotebookError saying what is wrong with a file that is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            return _json(f.read(), shown)
    except UnicodeDecodeError:
        raise NotebookError(shown, "not UTF-8 text", "re-save the notebook from JupyterLab") from None


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


def read_task(path: str, config: Config, contents: Mapping[str, str] | None = None,
              spec_task: ploomber.SpecTask | None = None, spec: ploomber.Spec | None = None) -> Task:
    """Compile one notebook file (.ipynb, or a jupytext text notebook) into a Task; `spec_task` when pipeline.yaml
    lists it, `spec` when the project has a pipeline.yaml."""
    shown = os.path.relpath(path, config.root)
    nb, lines = load(path, shown, contents)
    try:
        task = _read(nb, path, shown, config, spec_task, spec)
    except NotebookError as e:
        raise e.at_line(lines[e.cell] if e.cell is not None and 0 <= e.cell < len(lines) else None) from None
    return replace(task, cell_lines=lines, paired=_paired(path, nb) if textnb.is_text(path) else None)


def load(path: str, shown: str, contents: Mapping[str, str] | None = None) -> tuple[Any, tuple[int, ...]]:
    """A notebook file as nbformat-4 JSON, and for a text notebook the line where each cell starts."""
    if textnb.is_text(path):
        text = contents[path] if contents and path in contents else textnb.read_text(path, shown)
        nb = textnb.parse(text, path, shown)
        return nb, textnb.cell_lines(text, nb["cells"])
    if contents and path in contents:
        return _json(contents[path], shown), ()
    return load_json(path, shown), ()


def cell_tags(nb: Any, shown: str) -> list[list[str]]:
    """Every cell's tags, in order."""
    return [list(tags) for _, _, tags in _cells(nb, shown)]


def _paired(path: str, nb: Any) -> str | None:
    """The .ipynb paired with a text notebook: same folder and name, or named by jupytext's `formats` metadata."""
    same = os.path.splitext(path)[0] + ".ipynb"
    if os.path.isfile(same):
        return same
    meta = nb.get("metadata", {}).get("jupytext") or {}
    if not meta.get("formats"):
        return None
    from .lightimport import jupytext

    jupytext()
    from jupytext.paired_paths import paired_paths

    ext = os.path.splitext(path)[1][1:]
    name = (meta.get("text_representation") or {}).get("format_name")
    try:
        pairs = paired_paths(path, f"{ext}:{name}" if name else ext, meta["formats"])
    except Exception:  # noqa: BLE001 - pairing metadata that jupytext itself would not accept: no pair
        return None
    return next((p for p, _ in pairs if p.endswith(".ipynb") and os.path.isfile(p)), None)


def _json(text: str, shown: str) -> dict[str, Any]:
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        raise NotebookError(shown, f"not valid notebook JSON (line {e.lineno}, column {e.colno}: {e.msg})",
                            "restore the file from version control or re-save it from JupyterLab") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(shown, "has no 'cells' list: not an nbformat 4 notebook",
                            "convert it with `jupyter nbconvert --to notebook` or exclude it in nbflow.toml")
    return nb


def _read(nb: Any, path: str, shown: str, config: Config, spec_task: ploomber.SpecTask | None,
          spec: ploomber.Spec | None) -> Task:
    name = spec_task.name if spec_task is not None else task_name(path, config)
    nb_dir = spec_task.cwd if spec_task is not None else os.path.dirname(path)
    upstream: list[str] = []
    reads: list[str] = []
    writes: list[str] = []
    checks: list[int] = []
    params: list[str] = []
    defaults: dict[str, Any] = {}
    params_cell: int | None = None
    params_source = ""
    overrides: dict[str, Any] = {}
    tag_cells: dict[str, int] = {}
    uses: list[str] = []
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
            elif tag.kind == "uses":
                uses.append(str(tag.value))
            elif tag.kind == "check":
                if cell.get("cell_type") != "code":
                    raise TagError(shown, "tag 'check' is on a markdown cell", "move it to the code cell that asserts", index)
                checks.append(index)
            elif tag.kind == "parameters":
                if params_cell is not None:
                    raise TagError(shown, f"a second 'parameters' cell (the first is {cell_label(params_cell)})",
                                   "keep one parameters cell: papermill injects after the first", index)
                params_cell = index
                params_source = _source(cell)
                params, defaults = _assignments(params_source, shown, index)
            elif tag.kind == "resources":
                named = parse_named(str(tag.value))
                assert named is not None  # parse_tag checked it
                overrides["resources"] = tuple(sorted({**dict(overrides.get("resources", ())), named[0]: named[1]}.items()))
            else:
                overrides[tag.kind] = tag.value
    policy = policy_from(policy_from(config.defaults, config.tasks.get(name, {})), overrides)
    kernel = policy.kernel or _kernel_name(nb, shown) or "python3"
    code = normalized_code(nb["cells"])
    task = Task(
        name=name, path=path, relpath=shown,
        explicit_upstream=tuple(dict.fromkeys(upstream)),
        reads=tuple(dict.fromkeys(reads)), writes=tuple(dict.fromkeys(writes)),
        check_cells=tuple(checks), parameters=tuple(params), parameter_defaults=defaults, parameters_cell=params_cell,
        code_hash=hashlib.sha256(f"{kernel}\n{code}".encode()).hexdigest(),
        identifiers=frozenset(_IDENT.findall(code)), kernel=kernel, policy=policy, tag_cells=tag_cells, tagged=tagged,
        uses=tuple(dict.fromkeys(uses)),
        cwd=spec_task.cwd if spec_task is not None and spec_task.cwd != os.path.dirname(path) else None,
    )
    if spec is not None and spec_task is None and params_cell is not None and ploomber.declared(params_source, shown, params_cell):
        raise _NotATask  # a Ploomber script that pipeline.yaml does not list: not a task, as in Ploomber
    decl = ploomber.declaration(params_source, shown, params_cell, nb_dir, spec_task, spec)
    return ploomber.apply(task, decl, config.root) if decl is not None else task


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
