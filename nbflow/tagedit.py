"""Edit one cell's tags in a notebook file's text, changing nothing else: the result is the file byte for byte but
for that cell's tags. Pure: text in, text out.

An .ipynb is rewritten with nbformat when nbformat writes the file exactly as it is (JupyterLab saves that way),
else as JSON laid out as the file is (indent, key order); a file neither reproduces is refused rather than
reformatted. In a jupytext text notebook only the cell's marker line (or MyST's `:tags:` option) changes. Every
edit is checked by reading the result back: if anything but that cell's tags differs, it is refused.
"""
from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from . import textnb
from .errors import ConflictError, NotebookError

_FIX = "edit the tags in JupyterLab's property inspector (with the notebook open), or save it once from JupyterLab"
_MYST_TAGS = re.compile(r"^:tags:.*$")


def new_tags(current: Iterable[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """`current` without `remove`, then `add` appended (each once, order kept)."""
    gone = set(remove)
    out = [t for t in current if t not in gone]
    out += [t for t in dict.fromkeys(add) if t not in out]
    return out


def edit(path: str, text: str, shown: str, cell: int, add: Iterable[str], remove: Iterable[str]) -> str:
    """The file's new text with the cell's tags changed; NotebookError/ConflictError when it cannot be done exactly."""
    if textnb.is_text(path):
        return _edit_text(path, text, shown, cell, list(add), list(remove))
    return _edit_ipynb(text, shown, cell, list(add), list(remove))


def _cell(cells: Any, shown: str, cell: int) -> dict[str, Any]:
    if not isinstance(cells, list) or not 0 <= cell < len(cells):
        count = len(cells) if isinstance(cells, list) else 0
        raise NotebookError(shown, f"has no cell {cell} (it has {count} cells, numbered from 0)",
                            "give the index of the cell as the notebook counts it")
    found: dict[str, Any] = cells[cell]
    return found


def _edit_ipynb(text: str, shown: str, cell: int, add: list[str], remove: list[str]) -> str:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise NotebookError(shown, f"not valid notebook JSON (line {e.lineno}: {e.msg})", "re-save it from JupyterLab") from None
    target = _cell(raw.get("cells") if isinstance(raw, dict) else None, shown, cell)
    changed = copy.deepcopy(raw)
    metadata = changed["cells"][cell].setdefault("metadata", {})
    tags = new_tags(target.get("metadata", {}).get("tags") or [], add, remove)
    if tags:
        metadata["tags"] = tags
    else:
        metadata.pop("tags", None)
    for write in _writers(text):
        try:
            if write(raw) == text:
                return write(changed)
        except (ValueError, TypeError):
            continue
    raise ConflictError(f"{shown}: its JSON is laid out in a way nbflow cannot reproduce, so changing its tags would "
                        f"rewrite the whole file. Fix: {_FIX}")


def _writers(text: str) -> list[Callable[[Any], str]]:
    """Ways to write the notebook: nbformat's (JupyterLab's layout), then plain JSON in the layouts tools use."""

    def with_nbformat(nb: Any) -> str:
        from . import lightimport

        lightimport.jsonschema()
        import nbformat

        out: str = nbformat.writes(nbformat.from_dict(copy.deepcopy(nb)), version=nbformat.NO_CONVERT)  # type: ignore[no-untyped-call]
        return out + "\n" if text.endswith("\n") and not out.endswith("\n") else out

    def plain(indent: int, sort_keys: bool) -> Callable[[Any], str]:
        def write(nb: Any) -> str:
            out = json.dumps(nb, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
            return out + "\n" if text.endswith("\n") else out
        return write

    return [with_nbformat] + [plain(i, s) for i in (1, 2, 4) for s in (True, False)]


def _edit_text(path: str, text: str, shown: str, cell: int, add: list[str], remove: list[str]) -> str:
    nb = textnb.parse(text, path, shown)
    target = _cell(nb["cells"], shown, cell)
    tags = new_tags(target.get("metadata", {}).get("tags") or [], add, remove)
    starts = textnb.cell_lines(text, nb["cells"])
    lines = text.splitlines(keepends=True)
    at = starts[cell] - 1
    if at < 0 or not textnb.is_marker(lines[at]):
        raise ConflictError(f"{shown}, cell {cell}: the cell has no marker line to hold its tags (a light-format cell "
                            f"separated by blank lines). Fix: start it with a `# %%` (percent) or `# +` (light) line, or {_FIX}")
    if lines[at].startswith("```{code-cell}"):
        _myst_tags(lines, at, tags)
    else:
        lines[at] = _marker_with(lines[at], tags)
    result = "".join(lines)
    _verify(path, shown, nb, result, cell, tags)
    return result


def _marker_with(line: str, tags: list[str]) -> str:
    """A jupytext marker line (`# %% [markdown] tags=[...]`, `# + tags=[...]`, a fence, `<!-- #region -->`) with `tags`."""
    body = line.rstrip("\r\n")
    end = line[len(body):]
    start = body.find(" tags=[")
    if start >= 0:
        _, stop = json.JSONDecoder().raw_decode(body, start + len(" tags="))
        body = body[:start] + body[stop:]
    if tags:
        value = " tags=" + json.dumps(tags, ensure_ascii=False)
        close = body.rstrip().endswith("-->")
        body = body.rstrip()[:-3].rstrip() + value + " -->" if close else body + value
    return body + end


def _myst_tags(lines: list[str], at: int, tags: list[str]) -> None:
    """Set the `:tags:` option under a MyST code-cell fence (JSON is YAML's flow syntax)."""
    end = lines[at][len(lines[at].rstrip("\r\n")):] or "\n"
    i = at + 1
    while i < len(lines) and lines[i].startswith(":") and not _MYST_TAGS.match(lines[i]):
        i += 1
    has = i < len(lines) and bool(_MYST_TAGS.match(lines[i]))
    new = [f":tags: {json.dumps(tags, ensure_ascii=False)}{end}"] if tags else []
    lines[i:i + 1 if has else i] = new


def _verify(path: str, shown: str, before: Any, text: str, cell: int, tags: list[str]) -> None:
    """The edited text read back: the same cells, sources and metadata, but for that cell's tags."""
    after = textnb.parse(text, path, shown)

    def strip(nb: Any, drop: int) -> list[Any]:
        cells = []
        for i, c in enumerate(nb["cells"]):
            meta = {k: v for k, v in c.get("metadata", {}).items() if not (i == drop and k == "tags")}
            cells.append((c["cell_type"], c["source"], meta))
        return cells

    same = len(after["cells"]) == len(before["cells"]) and strip(after, cell) == strip(before, cell)
    if not same or list(after["cells"][cell].get("metadata", {}).get("tags") or []) != tags:
        raise ConflictError(f"{shown}, cell {cell}: changing the tags on the cell's marker line would change more than "
                            f"its tags (jupytext reads the file differently after it). Fix: {_FIX}")
