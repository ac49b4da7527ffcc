"""Parse nbflow's cell tags. Pure: strings in, values out."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import TagError
from .paths import placeholders as placeholders  # the path rules live in paths.py
from .resources import parse_named, parse_size

# Words whose tags nbflow owns. A tag that starts with one of these, followed by a separator,
# must parse, so that a typo is an error instead of a silently ignored dependency.
VALUE_TAGS = ("upstream", "reads", "writes", "retries", "timeout", "pool", "kernel", "uses", "cpus", "memory", "gpus",
              "resources")
FLAG_TAGS = ("parameters", "check")
KNOWN = VALUE_TAGS + FLAG_TAGS
_OWNED = re.compile(r"^(?P<word>[A-Za-z_]+)(?P<sep>\s*[:=]|\s+)?", re.ASCII)
_TASK_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")  # `uses:NAME`: a circuit breaker's name
IGNORED = ("injected-parameters",)  # papermill's own tag, found in executed notebooks


@dataclass(frozen=True)
class Tag:
    kind: str  # one of KNOWN
    value: str | int | float | None = None


def parse_tag(tag: str, notebook: str, cell: int) -> Tag | None:
    """Return the nbflow tag in `tag`, None when the tag is not ours; raise TagError when it is malformed."""
    m = _OWNED.match(tag)
    if tag in IGNORED or m is None:
        return None
    word, sep = m.group("word"), m.group("sep")
    lower = word.lower()
    if lower not in KNOWN or (sep is None and len(word) != len(tag)):
        return None  # e.g. "checkpoint", "readme": someone else's tag
    if word != lower:
        raise TagError(notebook, f"tag '{tag}' has upper-case letters", f"write it as '{lower}{tag[len(word):]}'", cell)
    if lower in FLAG_TAGS:
        if tag != lower:
            raise TagError(notebook, f"tag '{tag}' takes no value", f"write it as '{lower}'", cell)
        return Tag(lower)
    rest = tag[len(word):]
    if not rest.startswith(":"):
        example = f"{lower}:{rest.lstrip(' =:').strip() or 'VALUE'}"
        raise TagError(notebook, f"tag '{tag}' does not parse: '{lower}' needs a colon and a value", f"write it as '{example}'", cell)
    value = rest[1:].strip()
    if not value:
        raise TagError(notebook, f"tag '{tag}' has no value after the colon", f"write it as '{lower}:{_example(lower)}'", cell)
    return Tag(lower, _value(lower, value, tag, notebook, cell))


def _example(kind: str) -> str:
    return {"upstream": "ingest", "reads": "data/raw.csv", "writes": "data/out.csv", "retries": "3",
            "timeout": "600", "pool": "db", "kernel": "python3", "uses": "warehouse", "cpus": "2", "memory": "4G", "gpus": "1",
            "resources": "license=1"}[kind]


def _value(kind: str, value: str, tag: str, notebook: str, cell: int) -> str | int | float:
    if kind == "retries":
        if not value.isdigit():
            raise TagError(notebook, f"tag '{tag}': retries must be a whole number >= 0", "write it as 'retries:3'", cell)
        return int(value)
    if kind in ("cpus", "gpus"):
        least = 1 if kind == "cpus" else 0
        if not value.isdigit() or int(value) < least:
            raise TagError(notebook, f"tag '{tag}': {kind} must be a whole number >= {least}",
                           f"write it as '{kind}:{_example(kind)}'", cell)
        return int(value)
    if kind == "memory":
        size = parse_size(value)
        if size is None:
            raise TagError(notebook, f"tag '{tag}': '{value}' is not a size",
                           "write it as e.g. 'memory:512M' or 'memory:4G' (binary units)", cell)
        return size
    if kind == "resources":
        named = parse_named(value)
        if named is None:
            raise TagError(notebook, f"tag '{tag}': '{value}' is not NAME=AMOUNT with a positive amount",
                           "write it as e.g. 'resources:license=1'", cell)
        return f"{named[0]}={named[1]:g}"
    if kind == "timeout":
        try:
            seconds = float(value.rstrip("s"))
        except ValueError:
            seconds = -1.0
        if seconds <= 0:
            raise TagError(notebook, f"tag '{tag}': timeout must be a positive number of seconds", "write it as 'timeout:600'", cell)
        return seconds
    if kind == "upstream" and not _TASK_NAME.match(value):
        raise TagError(notebook, f"tag '{tag}': '{value}' is not a task name",
                       "name the upstream notebook by its path under the notebooks folder without .ipynb, e.g. 'upstream:etl/clean'", cell)
    if kind == "uses" and not _SERVICE_NAME.match(value):
        raise TagError(notebook, f"tag '{tag}': '{value}' is not a service name",
                       "name the outside service with letters, digits, '_', '.' or '-', e.g. 'uses:warehouse'", cell)
    if kind in ("reads", "writes"):
        _check_template(value, tag, notebook, cell)
    return value


def _check_template(path: str, tag: str, notebook: str, cell: int) -> None:
    depth = 0
    for ch in path:
        depth += ch == "{"
        depth -= ch == "}"
        if depth not in (0, 1):
            break
    if depth != 0 or re.search(r"\{\s*\}", path) or not all(
        re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in re.findall(r"\{([^}]*)\}", path)
    ):
        raise TagError(notebook, f"tag '{tag}': placeholders must look like {{name}} with a parameter name",
                       "write it as e.g. 'writes:data/{run_date}/out.csv'", cell)

