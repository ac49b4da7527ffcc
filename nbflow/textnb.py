"""Notebooks kept as text files (jupytext's `.py` percent/light and `.md`/MyST): which files are notebooks, reading
one, and where each cell starts in the file.

Deciding whether a file is a notebook looks at its text only. Reading one imports jupytext (and with it nbformat),
inside the function: a project of `.ipynb` files never pays for that import.
"""
from __future__ import annotations

import os
import re
from typing import Any

from .errors import NotebookError

TEXT_SUFFIXES = (".py", ".md")
NOTEBOOK_SUFFIXES = (".ipynb", *TEXT_SUFFIXES)
_PY_HEADER = re.compile(r"\A(?:#!.*\n)?(?:#.*coding[:=].*\n)?\s*# ---[ \t]*\n# jupyter:", re.ASCII)
_PY_MARKER = re.compile(r"^# %%|^# \+ .*\btags=", re.MULTILINE)  # a percent cell, or a light cell with tags
_MD_HEADER = re.compile(r"\A---[ \t]*\n(?:.*\n)*?(?:jupyter|jupytext|kernelspec):", re.ASCII)
_MD_MARKER = re.compile(r"^```\{code-cell\}", re.MULTILINE)  # MyST
_MYST_OPTION = re.compile(r"^:[\w-]+:")  # `:tags: [...]` under a MyST code-cell fence
_CELL_MARKER = re.compile(r"^(?:# %%|# \+|```|<!-- #|\+\+\+)")


def notebook_suffix(path: str) -> str | None:
    """The notebook suffix a path ends with ('.ipynb', '.py', '.md'), None for any other file."""
    return next((s for s in NOTEBOOK_SUFFIXES if path.endswith(s)), None)


def is_text(path: str) -> bool:
    return path.endswith(TEXT_SUFFIXES)


def looks_like_notebook(path: str, text: str) -> bool:
    """Whether a .py/.md file is a jupytext notebook: a jupytext header, or cell markers (`# %%`, `# + tags=...`,
    MyST's code-cell). A plain Python module (a helper the notebooks import) has neither."""
    if path.endswith(".py"):
        return bool(_PY_HEADER.match(text) or _PY_MARKER.search(text))
    if path.endswith(".md"):
        return bool(_MD_HEADER.match(text) or _MD_MARKER.search(text))
    return False


def read_text(path: str, shown: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise NotebookError(shown, "not UTF-8 text", "save the file as UTF-8") from None


def parse(text: str, path: str, shown: str) -> Any:
    """The text notebook as an nbformat-4 notebook (jupytext's reading of it, format guessed from the text)."""
    from .lightimport import jupytext

    ext = os.path.splitext(path)[1]
    try:
        return jupytext().reads(text, fmt=ext)
    except Exception as e:  # noqa: BLE001 - jupytext raises many types for a file it cannot read
        said = " ".join(str(e).split())  # YAML errors span lines; a message is one
        raise NotebookError(shown, f"jupytext cannot read it as a notebook ({type(e).__name__}: {said})",
                            "fix the jupytext header or the cell markers (check with `jupytext --to ipynb` on it)") from None


def format_name(text: str, path: str) -> str:
    """jupytext's name for the file's format ('py:percent', 'py:light', 'md', 'md:myst'), for messages and the API."""
    from .lightimport import jupytext

    ext = os.path.splitext(path)[1]
    name, _ = jupytext().guess_format(text, ext)
    return f"{ext[1:]}:{name}" if name else ext[1:]


def notebook_format(path: str) -> str:
    """'ipynb' for an .ipynb file, else jupytext's name of the text file's format ('py:percent', 'md:myst', ...)."""
    if not is_text(path):
        return "ipynb"
    with open(path, encoding="utf-8") as f:
        return format_name(f.read(), path)


def cell_lines(text: str, cells: list[dict[str, Any]]) -> tuple[int, ...]:
    """The 1-based line where each cell starts in the text: its marker line when it has one, else its first line.

    Found by looking for each cell's first line in order (as written, or with the comment sign jupytext adds to
    markdown and magics removed); 0 for a cell that cannot be placed."""
    lines = text.splitlines()
    out: list[int] = []
    cursor = 0
    for cell in cells:
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        first = next((ln.strip() for ln in src.splitlines() if ln.strip()), None)
        found = _find(lines, cursor, first)
        if found is None:
            out.append(0)
            continue
        start = found
        back = found - 1
        while back >= cursor and (not lines[back].strip() or _MYST_OPTION.match(lines[back])):
            back -= 1
        if back >= cursor and _CELL_MARKER.match(lines[back]) and (first is None or back < found):
            start = back
        if first is None:  # an empty cell: its marker is the line found
            start = found
        out.append(start + 1)
        cursor = found + 1
    return tuple(out)


def is_marker(line: str) -> bool:
    """Whether a line starts a cell in a jupytext file (`# %%`, `# +`, a code fence, `<!-- #region -->`, `+++`)."""
    return bool(_CELL_MARKER.match(line))


def _find(lines: list[str], cursor: int, first: str | None) -> int | None:
    for i in range(cursor, len(lines)):
        line = lines[i].strip()
        if first is None:
            if _CELL_MARKER.match(lines[i]):
                return i
        elif line == first or line.lstrip("#").strip() == first or _uncomment(line) == first:
            return i
    return None


def _uncomment(line: str) -> str:
    return line[2:].strip() if line.startswith("# ") else line
