"""Importing a package without the optional extras it would load at import time, which nbflow never uses.

sqlite-utils imports pandas and numpy to map their types (0.4 s of CPU on a new project's first run), and
jsonschema imports a dozen format-check libraries (one of them compiles grammars for a second). Inside
`without(...)`, those that are not loaded yet fail to import at once; the package then works without them, in this
process (a later `import pandas` works as usual, but that package keeps what it saw).
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# jsonschema's optional format checkers (jsonschema/_format.py): notebook schemas use none of their formats.
JSONSCHEMA_FORMAT_LIBS = ("rfc3987_syntax", "rfc3987", "rfc3986_validator", "rfc3339_validator", "fqdn", "idna",
                          "webcolors", "jsonpointer", "uri_template", "isoduration")

_lock = threading.Lock()  # two runs in one process (the scheduler) must not block and unblock the same names at once


@contextmanager
def without(*names: str) -> Iterator[None]:
    """Make importing the named modules fail fast inside the block, unless they are loaded already."""
    with _lock:
        blocked = [n for n in names if n not in sys.modules]
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            yield
        finally:
            for name in blocked:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]
