"""The one path rule: how a tag, include/exclude or sensor path is spelled, normalised, matched and expanded.

A *key* is the project's name for a path: posix, relative to the project root, absolute when outside it. A key
may hold `{param}` placeholders (a template) and glob wildcards. What a key names, as files:

- a plain key (no wildcard) names that file, or every file under that folder (dot-files included);
- a glob names the files it matches: `*` any run of characters and `?` one character within a segment,
  `[abc]`, `[a-z]`, `[!a]` one character of (or not of) a set, `**` as a whole segment any number of
  segments (zero included); `**` inside a longer segment is `*`. As in the shell and `glob.glob`, a wildcard
  never matches a leading dot: `*`, `?`, `[...]` at the start of a segment and every segment `**` crosses
  skip names that start with `.` (write the dot: `.cache/*`, `data/.*`);
- a `{param}` placeholder stands for one whole or partial segment of any non-empty text.

A key may also be a URL of object storage (`s3://bucket/data/*.csv`, `gs://...`; fsspec's protocols): the same
grammar applies to the part after the bucket, and a URL never matches a local path or a URL of another bucket.
`file://` URLs are local paths. URLs are listed and fingerprinted through nbflow/storage.py, never downloaded.

Everything here is pure except the functions at the end, which look at the disk (or the object store).
"""
from __future__ import annotations

import functools
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")

_MAX_CHAR = 0x10FFFF
_Chars = tuple[tuple[tuple[int, int], ...], bool]  # code point intervals, and whether the set is their complement
_ANY: _Chars = ((), True)
_FORBIDDEN = (ord("/"),)  # never inside a segment


@dataclass(frozen=True)
class _One:
    """One character of `chars`; `wild` when it came from a wildcard (so it may not be a leading dot)."""

    chars: _Chars
    wild: bool


@dataclass(frozen=True)
class _Star:
    """Any run of characters within a segment."""

    wild: bool


_Token = _One | _Star


@dataclass(frozen=True)
class _Segment:
    """One path segment's pattern; `literal` is its text when it holds no wildcard and no placeholder."""

    text: str
    tokens: tuple[_Token, ...]
    literal: str | None
    strict: bool = False  # part of a plain path read as a folder: see overlap_example

    @property
    def holds_placeholder(self) -> bool:
        return PLACEHOLDER.search(self.text) is not None

    @property
    def nodot(self) -> bool:
        """A segment that starts with a wildcard does not match a name that starts with a dot."""
        return bool(self.tokens) and self.tokens[0].wild


@dataclass(frozen=True)
class _Many:
    """Zero or more whole segments: `**` (no dot-names), or everything under a plain folder (`hidden`)."""

    hidden: bool


_Part = _Segment | _Many
_DSTAR = _Many(hidden=False)
_UNDER = _Many(hidden=True)


# spelling and normalisation

def is_url(path: str) -> bool:
    """Whether the path is a URL (`s3://bucket/key`); `file://` URLs are URLs here too."""
    return _URL.match(path) is not None


def split_url(key: str) -> tuple[str, str]:
    """A URL key as its store and its path in it (`s3://bucket`, `/data/x.csv`); a local key as ("", key)."""
    m = _URL.match(key)
    if m is None:
        return "", key
    netloc, _, rest = key[m.end():].partition("/")
    return f"{m.group(1).lower()}://{netloc}", "/" + rest


def project_key(path: str, base: str, root: str) -> str:
    """`path` as written (relative to the folder `base`, or absolute; `~` expanded) as the project's key for it.

    Lexical, like the code in a cell sees it: `..` is collapsed without following symlinks. A URL is its own key
    (`..` and `//` collapsed); a `file://` URL is the local path it names.
    """
    if is_url(path):
        store, rest = split_url(path)
        if store.startswith("file://"):
            return project_key(rest if store == "file://" else "/" + store[len("file://"):] + rest, base, root)
        rest = re.sub("/+", "/", posixpath.normpath(rest)) if rest != "/" else rest
        return store + rest
    full = os.path.normpath(os.path.join(base, os.path.expanduser(path)))
    rel = os.path.relpath(full, root)
    outside = rel == os.pardir or rel.startswith(os.pardir + os.sep)
    return (full if outside else rel).replace(os.sep, "/")


def spelled_from(key: str, folder: str) -> str:
    """How a tag in a notebook in `folder` (a key) spells `key`: relative to that folder, or absolute (or a URL)."""
    if posixpath.isabs(key) or is_url(key) or folder in ("", "."):
        return key
    return posixpath.relpath(key, folder)


def placeholders(template: str) -> set[str]:
    """The parameter names a template refers to."""
    return set(PLACEHOLDER.findall(template))


def fill(template: str, values: Mapping[str, Any]) -> str:
    """The template with each `{name}` replaced by `values[name]`.

    A value that is an absolute path, at the start of a segment, starts the path again there, as
    os.path.join does for the code in the cell (a sensor's `input_path`).
    """
    parts: list[str] = []
    for segment in template.split("/"):
        text = PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), segment)
        if segment.startswith("{") and is_url(text):  # a URL value starts the path again too
            parts = []
        elif text.startswith("/") and segment.startswith("{"):
            parts = [""]
            text = text[1:]
        parts.append(text)
    return "/".join(parts)


def resolve(template: str, values: Mapping[str, Any], root: str) -> str:
    """The key a template names with these parameter values (every placeholder must have a value)."""
    return project_key(fill(template, values), root, root)


# the glob grammar

def is_glob(key: str) -> bool:
    """Whether the key holds a wildcard (a placeholder is not one)."""
    key = split_url(key)[1]
    return any(isinstance(p, _Many) or any(t.wild for t in p.tokens) for p in _parse(key, plain_tail=False))


def fixed_prefix(key: str) -> str:
    """The key's leading literal segments: the folder every match of a glob lies in ('.' when there are none)."""
    store, key = split_url(key)
    if store:
        return store + fixed_prefix(key)
    names = []
    for part in _parse(key, plain_tail=False):
        if not (isinstance(part, _Segment) and part.literal is not None):
            break
        names.append(part.literal)
    return ("/" if key.startswith("/") else "") + "/".join(names) or "."


def matches(pattern: str, path: str) -> bool:
    """Whether the file `path` (a key) is among the files `pattern` names: itself or under it, or a match."""
    (store, pattern), (other, path) = split_url(pattern), split_url(path)
    if store != other or posixpath.isabs(pattern) != posixpath.isabs(path):
        return False
    parts, names = _parse(pattern), _names(path)

    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(parts):
            return j == len(names)
        part = parts[i]
        if isinstance(part, _Many):
            return go(i + 1, j) or (j < len(names) and (part.hidden or not names[j].startswith(".")) and go(i, j + 1))
        return j < len(names) and _segment_regex(part.text).fullmatch(names[j]) is not None and go(i + 1, j + 1)

    return go(0, 0)


def may_overlap(writer: str, reader: str) -> bool:
    """Whether some file could be named by both templates: the DAG's edge rule, decided before anything runs."""
    return overlap_example(writer, reader) is not None


def overlap_example(a: str, b: str) -> str | None:
    """A file path that both templates name (placeholders filled with some text), or None when there is none.

    Pattern intersection, not sampling: a memoised search over the two templates' segments, and within a
    segment over their characters, so `data/*.csv` and `data/sub/x.csv` do not overlap while `data` and
    `data/**/x.csv` do. A plain path read as a folder meets the other path's segments strictly: a
    placeholder on either side does not stand for a literal name there, so `data/{run_date}/out.csv` is
    not taken to lie under a folder `data/config.csv`. URLs meet only URLs of the same bucket.
    """
    (store, a), (other, b) = split_url(a), split_url(b)
    if store != other:
        return None
    found = _overlap_example(a, b)
    return None if found is None else store + found


def _overlap_example(a: str, b: str) -> str | None:
    if a.startswith("/") != b.startswith("/"):
        return None
    x, y = _shape(a), _shape(b)
    if x.literal and y.literal:  # the common case, kept cheap: the same path, or one under the other
        return _literal_overlap(a, b)
    if x.names is not None and y.names is not None:  # no `**`: segments pair up by position
        if any(p is not None and q is not None and p != q for p, q in zip(x.names, y.names)):
            return None
        tries: list[tuple[tuple[_Part, ...] | None, tuple[_Part, ...] | None]]
        if len(x.names) == len(y.names):
            tries = [(x.file, y.file)]
        else:
            tries = [(x.folder, y.file) if len(x.names) < len(y.names) else (x.file, y.folder)]
    else:
        tries = [(x.file, y.file), (x.folder, y.file), (x.file, y.folder)]
    for left, right in tries:
        if left is not None and right is not None and (found := _intersect(left, right)) is not None:
            return ("/" if posixpath.isabs(a) else "") + "/".join(found)
    return None


def _literal_overlap(a: str, b: str) -> str | None:
    short, long = (a, b) if len(a) < len(b) or a in (".", "/") else (b, a)
    if long == short or short in (".", "/") or long.startswith(short + "/"):
        return long
    return None


def overlapping(writes: Iterable[str], reads: Iterable[str]) -> list[tuple[str, str]]:
    """Every (write, read) pair that may_overlap: a pipeline's edges, without trying every pair.

    Literal paths are looked up by their folders; paths without `**` of the same depth must share a literal
    last name to meet as files. Only the remaining pairs are searched. URLs meet only URLs of their bucket.
    """
    by_store: dict[str, tuple[list[str], list[str]]] = {}
    for w in dict.fromkeys(writes):
        by_store.setdefault(split_url(w)[0], ([], []))[0].append(w)
    for r in dict.fromkeys(reads):
        by_store.setdefault(split_url(r)[0], ([], []))[1].append(r)
    out = []
    for store, (ws, rs) in by_store.items():
        if not store:
            out += _overlapping(ws, rs)
            continue
        found = _overlapping([split_url(w)[1] for w in ws], [split_url(r)[1] for r in rs])
        out += [(store + w, store + r) for w, r in found]
    return out


def _overlapping(writes: list[str], reads: list[str]) -> list[tuple[str, str]]:
    shapes = {w: _shape(w) for w in writes}
    literal = {w for w, s in shapes.items() if s.literal}
    under: dict[str, list[str]] = {}  # folder -> the literal writes below it
    for w in literal:
        for folder in _folders(w):
            under.setdefault(folder, []).append(w)
    depth: dict[int, dict[str | None, list[str]]] = {}  # depth -> last name (None: not literal) -> writes without **
    loose = []  # writes with **
    for w, s in shapes.items():
        if s.names is None:
            loose.append(w)
        else:
            depth.setdefault(len(s.names), {}).setdefault(s.names[-1] if s.names else None, []).append(w)
    out = []
    for r in reads:
        shape = _shape(r)
        if shape.names is None:
            candidates = writes
        else:
            n, last = len(shape.names), (shape.names[-1] if shape.names else None)
            same = depth.get(n, {})
            candidates = [w for d, by_last in depth.items() if d != n for ws in by_last.values() for w in ws] + loose
            candidates += [w for name, ws in same.items() if last is None or name is None or name == last for w in ws]
        if shape.literal:
            found = {w for w in (r, *_folders(r)) if w in literal} | set(under.get(r, []))
            found |= {w for w in candidates if w not in literal and may_overlap(w, r)}
        else:
            found = {w for w in candidates if may_overlap(w, r)}
        out += [(w, r) for w in sorted(found)]
    return out


def _folders(key: str) -> list[str]:
    """The folders a key lies in, the project root ('.') or '/' included."""
    names = _names(key)
    top = "/" if key.startswith("/") else "."
    return [top] + [("/" if top == "/" else "") + "/".join(names[:n]) for n in range(1, len(names))]


@dataclass(frozen=True)
class _Shape:
    """A template's parts as a file, and as a folder with at least one name under it (plain templates only)."""

    file: tuple[_Part, ...]
    folder: tuple[_Part, ...] | None
    literal: bool  # no wildcard, no placeholder
    names: tuple[str | None, ...] | None  # each segment's literal name (None when it is not one); None with `**`


@functools.lru_cache(maxsize=4096)
def _shape(template: str) -> _Shape:
    parts = _parse(template, plain_tail=False)
    segments = [p for p in parts if isinstance(p, _Segment)]
    names = None if len(segments) < len(parts) else tuple(p.literal for p in segments)
    if is_glob(template):
        return _Shape(parts, None, False, names)
    strict = tuple(_segment(p.text, strict=True) for p in segments)
    return _Shape(parts, (*strict, _ANY_NAME, _UNDER), all(p.literal is not None for p in segments), names)


def _intersect(left: tuple[_Part, ...], right: tuple[_Part, ...]) -> tuple[str, ...] | None:
    """Names of a path both part lists match, or None."""
    if not any(isinstance(p, _Many) for p in left[:-1] + right[:-1]):
        return _intersect_fixed(left, right)

    @functools.cache
    def go(i: int, j: int) -> tuple[str, ...] | None:
        x = left[i] if i < len(left) else None
        y = right[j] if j < len(right) else None
        if x is None and y is None:
            return ()
        if isinstance(x, _Many) and (found := go(i + 1, j)) is not None:
            return found
        if isinstance(y, _Many) and (found := go(i, j + 1)) is not None:
            return found
        if x is None or y is None or (isinstance(x, _Many) and isinstance(y, _Many)):
            return None  # both many: skipping either one was tried above
        name = _segments_example(_as_segment(x), _as_segment(y))
        if name is None:
            return None
        rest = go(i if isinstance(x, _Many) else i + 1, j if isinstance(y, _Many) else j + 1)
        return None if rest is None else (name, *rest)

    return go(0, 0)


def _intersect_fixed(left: tuple[_Part, ...], right: tuple[_Part, ...]) -> tuple[str, ...] | None:
    """`_intersect` without the search when a `_Many` can only be last: the segments pair up by position."""
    x_many = left[-1] if left and isinstance(left[-1], _Many) else None
    y_many = right[-1] if right and isinstance(right[-1], _Many) else None
    xs = [p for p in left if isinstance(p, _Segment)]
    ys = [p for p in right if isinstance(p, _Segment)]
    if (len(xs) < len(ys) and x_many is None) or (len(ys) < len(xs) and y_many is None):
        return None
    for x, y in zip(xs, ys):  # literal names first: they decide most pairs without a search
        if x.literal is not None and y.literal is not None and x.literal != y.literal:
            return None
    names = []
    for x, y in zip(xs, ys):
        name = _segments_example(x, y)
        if name is None:
            return None
        names.append(name)
    extra, many = (ys[len(xs):], x_many) if len(xs) < len(ys) else (xs[len(ys):], y_many)
    for seg in extra:
        assert many is not None
        name = _segments_example(_as_segment(many), seg)
        if name is None:
            return None
        names.append(name)
    return tuple(names)


def _as_segment(part: _Part) -> _Segment:
    """The one segment a `_Many` consumes at a time, as a pattern."""
    if isinstance(part, _Segment):
        return part
    return _ANY_NAME if part.hidden else _WILD_NAME


def _segments_example(x: _Segment, y: _Segment) -> str | None:
    """A non-empty name that both segment patterns match, or None."""
    return _names_example(x.text, x.strict, y.text, y.strict)


@functools.lru_cache(maxsize=65536)
def _names_example(x_text: str, x_strict: bool, y_text: str, y_strict: bool) -> str | None:
    x, y = _segment(x_text, x_strict), _segment(y_text, y_strict)
    if x.literal is not None and y.literal is not None:
        return x.literal if x.literal == y.literal else None
    if (x.strict or y.strict) and ((x.holds_placeholder and y.literal is not None)
                                   or (y.holds_placeholder and x.literal is not None)):
        return None
    if x.literal is not None or y.literal is not None:
        name, other = (x.literal, y) if x.literal is not None else (y.literal, x)
        assert name is not None
        return name if _segment_regex(other.text).fullmatch(name) else None
    nodot = x.nodot or y.nodot
    xs, ys = x.tokens, y.tokens

    @functools.cache
    def go(p: int, q: int, dots: int) -> str | None:
        """`dots`: 0 nothing taken yet; 1-3 only dots so far (3: three or more); -1 a name with another character.
        A name is never '.' or '..' (those are not files)."""
        tx = xs[p] if p < len(xs) else None
        ty = ys[q] if q < len(ys) else None
        if tx is None and ty is None:
            return "" if dots in (-1, 3) else None
        if isinstance(tx, _Star) and (found := go(p + 1, q, dots)) is not None:
            return found
        if isinstance(ty, _Star) and (found := go(p, q + 1, dots)) is not None:
            return found
        if tx is None or ty is None or (isinstance(tx, _Star) and isinstance(ty, _Star) and dots in (-1, 3)):
            return None  # two stars taking a character together only help a name that is empty or all dots
        ch = _pick(_ANY if isinstance(tx, _Star) else tx.chars, _ANY if isinstance(ty, _Star) else ty.chars,
                   nodot and dots == 0)
        if ch is None:
            return None
        after = -1 if ch != "." or dots == -1 else min(dots + 1, 3)
        rest = go(p if isinstance(tx, _Star) else p + 1, q if isinstance(ty, _Star) else q + 1, after)
        return None if rest is None else ch + rest

    return go(0, 0, 0)


def _pick(a: _Chars, b: _Chars, no_dot: bool) -> str | None:
    """A character in both sets (never '/', and not '.' when `no_dot`): a readable one first, a dot last.

    The sets are unions of intervals, so if they meet, they meet at one of the intervals' ends (or next to them)."""
    points = [ord(c) for c in "x0_"]
    for intervals, _ in (a, b):
        for lo, hi in intervals:
            points += [lo, hi, lo - 1, hi + 1]
    points += [0, _MAX_CHAR, ord(".") - 1, ord(".") + 1, ord("/") - 1, ord("/") + 1]
    points = [c for c in points if c != ord(".")] + [ord(".")]
    for c in points:
        if 0 <= c <= _MAX_CHAR and c not in _FORBIDDEN and not (no_dot and c == ord(".")) and _has(a, c) and _has(b, c):
            return chr(c)
    return None


def _has(chars: _Chars, c: int) -> bool:
    intervals, negated = chars
    return any(lo <= c <= hi for lo, hi in intervals) != negated


def _names(path: str) -> tuple[str, ...]:
    inner = path.strip("/")
    return tuple(inner.split("/")) if inner not in ("", ".") else ()


@functools.lru_cache(maxsize=4096)
def _parse(key: str, plain_tail: bool = True) -> tuple[_Part, ...]:
    """The key's segments; a plain key ends with `_UNDER` (everything under the folder) when `plain_tail`."""
    parts: list[_Part] = [_DSTAR if name == "**" else _segment(name) for name in _names(key)]
    glob = any(isinstance(p, _Many) or any(t.wild for t in p.tokens) for p in parts)
    return (*parts, _UNDER) if plain_tail and not glob else tuple(parts)


@functools.lru_cache(maxsize=4096)
def _segment(text: str, strict: bool = False) -> _Segment:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "*":
            if not (tokens and isinstance(tokens[-1], _Star)):
                tokens.append(_Star(wild=True))
            i += 1
        elif c == "?":
            tokens.append(_One(_ANY, wild=True))
            i += 1
        elif c == "[" and (end := _class_end(text, i)) > 0:
            tokens.append(_One(_class(text[i + 1:end]), wild=True))
            i = end + 1
        elif c == "{" and (m := PLACEHOLDER.match(text, i)):
            tokens += [_One(_ANY, wild=False), _Star(wild=False)]
            i = m.end()
        else:
            tokens.append(_One((((ord(c), ord(c)),), False), wild=False))
            i += 1
    plain = all(isinstance(t, _One) and not t.wild and t.chars != _ANY for t in tokens)
    literal = text if plain else None
    return _Segment(text, tuple(tokens), literal, strict)


def _class_end(text: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start` (fnmatch's rules), or -1 when it is a plain `[`."""
    j = start + 1
    if j < len(text) and text[j] == "!":
        j += 1
    if j < len(text) and text[j] == "]":
        j += 1
    end = text.find("]", j)
    return end


def _class(body: str) -> _Chars:
    negated = body.startswith("!")
    body = body[1:] if negated else body
    intervals: list[tuple[int, int]] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            lo, hi = ord(body[k]), ord(body[k + 2])
            k += 3
        else:
            lo = hi = ord(body[k])
            k += 1
        if lo <= hi:
            intervals.append((lo, hi))
    return tuple(intervals), negated


@functools.lru_cache(maxsize=4096)
def _segment_regex(text: str) -> re.Pattern[str]:
    seg = _segment(text)
    out = [r"(?!\.)"] if seg.nodot else []
    for t in seg.tokens:
        out.append("[^/]*" if isinstance(t, _Star) else _chars_regex(t.chars))
    return re.compile("".join(out))


def _chars_regex(chars: _Chars) -> str:
    intervals, negated = chars
    if not negated and len(intervals) == 1 and intervals[0][0] == intervals[0][1]:
        return re.escape(chr(intervals[0][0]))
    body = "".join(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in intervals)
    if negated:
        return f"[^/{body}]"
    return f"(?!/)[{body}]" if body else "(?!)"


_WILD_NAME = _segment("?*")  # a segment `**` crosses: any name but a dot-name
_ANY_NAME = _segment("{_}")  # any name under a plain folder: a placeholder's text


# on disk: the only two functions here that touch the file system

def location(key: str, root: str) -> str:
    """What the code in a cell is given for a key: the absolute path, or the URL unchanged."""
    if is_url(key) or posixpath.isabs(key):
        return key
    return os.path.join(root, *key.split("/"))


def list_files(key: str, root: str) -> list[str]:
    """The files a resolved key names on disk (or objects, for a URL), as keys, sorted: the same grammar as `matches`.

    Symlinked folders are followed (the code in the cell sees through them), each at most once per pattern step.
    """
    if is_url(key):
        from .storage import list_objects

        return list_objects(key)
    parts = _parse(key)
    absolute = posixpath.isabs(key)
    found: set[str] = set()
    seen: set[tuple[str, int]] = set()

    def as_key(names: tuple[str, ...]) -> str:
        return ("/" if absolute else "") + "/".join(names)

    def walk(full: str, names: tuple[str, ...], i: int) -> None:
        if i == len(parts):
            if os.path.isfile(full):
                found.add(as_key(names))
            return
        part = parts[i]
        if isinstance(part, _Segment) and part.literal is not None:
            walk(os.path.join(full, part.literal), (*names, part.literal), i + 1)
            return
        if isinstance(part, _Many):
            walk(full, names, i + 1)
        if not os.path.isdir(full) or (os.path.realpath(full), i) in seen:
            return
        seen.add((os.path.realpath(full), i))
        try:
            with os.scandir(full) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if isinstance(part, _Many):
                if part.hidden or not entry.name.startswith("."):
                    walk(entry.path, (*names, entry.name), i if _is_dir(entry) else i + 1)
            elif _segment_regex(part.text).fullmatch(entry.name):
                walk(entry.path, (*names, entry.name), i + 1)

    walk(os.sep if absolute else root, (), 0)
    return sorted(found)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def within(root: str, relative: str) -> Path | None:
    """`relative` under `root` with symlinks followed, or None when it leads outside `root`.

    Containment is `is_relative_to` on resolved paths, never a string prefix (`/srv/data-secret` is not in `/srv/data`).
    """
    base = Path(root).resolve()
    target = (base / relative).resolve()
    return target if target.is_relative_to(base) else None
