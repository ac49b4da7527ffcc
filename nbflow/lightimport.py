"""Import packages without the optional parts nbflow never uses, which make their import slow.

sqlite-utils imports pandas and numpy to map their types (0.4 s of CPU on a new project's first run), jsonschema
imports a dozen format-check libraries (one of them compiles grammars for a second), and jupytext loads Jupyter's
contents managers. Inside `without(...)`, the named modules that are not loaded yet fail to import at once; the
package then works without them, in this process (a later `import pandas` works as usual, but the package keeps
what it saw).
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

# jsonschema's optional format checkers (jsonschema/_format.py): notebook schemas use none of their formats.
JSONSCHEMA_FORMAT_LIBS = ("rfc3987_syntax", "rfc3987", "rfc3986_validator", "rfc3339_validator", "fqdn", "idna",
                          "webcolors", "jsonpointer", "uri_template", "isoduration")
_CONTENTS_MANAGERS = ("jupytext.sync_contentsmanager", "jupytext.async_contentsmanager")
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


def jsonschema() -> None:
    """Import jsonschema (nbformat validates with it) without its optional format checkers.

    When they are installed (JupyterLab's `jsonschema[format-nongpl]` brings them), `rfc3987-syntax` alone compiles
    dozens of grammars at import for the "iri" format (~1 s of a 1.3 s import here) and the others cost ~0.3 s more.
    Notebook schemas use none of those formats, so when jsonschema is not loaded yet it is imported without them:
    jsonschema's checks of those formats are then unavailable in this process."""
    if "jsonschema" in sys.modules:
        return
    with without(*JSONSCHEMA_FORMAT_LIBS):
        import jsonschema  # noqa: F401


def jupytext() -> ModuleType:
    """jupytext, for reading and writing text notebooks.

    `import jupytext` also loads its Jupyter contents managers, and with them jupyter_server and tornado, which
    nbflow never needs from it. Outside a Jupyter server process they are left out (jupytext's package then names
    them as unavailable); in a process that already loaded jupyter_server, jupytext is imported whole, so its own
    contents manager keeps working there."""
    jsonschema()
    if "jupytext" not in sys.modules and "jupyter_server" not in sys.modules:
        with without(*_CONTENTS_MANAGERS):
            import jupytext
    import jupytext
    module: ModuleType = jupytext
    return module
