"""Import the notebook libraries without the parts nbflow never uses, which make their import slow."""
from __future__ import annotations

import sys
import threading
from types import ModuleType

_lock = threading.Lock()  # two runs in one process (the scheduler) must not import the same package at once
_CONTENTS_MANAGERS = ("jupytext.sync_contentsmanager", "jupytext.async_contentsmanager")


def jsonschema() -> None:
    """Import jsonschema (nbformat validates with it) without `rfc3987-syntax`.

    When `rfc3987-syntax` is installed (JupyterLab's `jsonschema[format-nongpl]` brings it), jsonschema compiles
    dozens of grammars at import for its "iri" format check: ~1 s of a 1.3 s import here. Notebook schemas never use
    that format, so when jsonschema is not loaded yet it is imported without it: jsonschema's iri format check is
    then unavailable in this process."""
    with _lock:
        if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
            sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # makes its import fail fast
            try:
                import jsonschema  # noqa: F401
            finally:
                del sys.modules["rfc3987_syntax"]


def jupytext() -> ModuleType:
    """jupytext, for reading and writing text notebooks.

    `import jupytext` also loads its Jupyter contents managers, and with them jupyter_server and tornado, which
    nbflow never needs from it. Outside a Jupyter server process they are left out (jupytext's package then names
    them as unavailable); in a process that already loaded jupyter_server, jupytext is imported whole, so its own
    contents manager keeps working there."""
    jsonschema()
    with _lock:
        if "jupytext" not in sys.modules and "jupyter_server" not in sys.modules:
            for name in _CONTENTS_MANAGERS:
                sys.modules[name] = None  # type: ignore[assignment]
            try:
                import jupytext
            finally:
                for name in _CONTENTS_MANAGERS:
                    if sys.modules.get(name, 0) is None:
                        del sys.modules[name]
        import jupytext
    module: ModuleType = jupytext
    return module
