"""Which Jupyter kernels are installed, found the way jupyter_client finds them but without importing it.

jupyter_client's KernelSpecManager costs ~60 ms to import; every run checks kernels before it starts, and a
run with nothing to do must stay well under half a second.
"""
from __future__ import annotations

import importlib.util
import os


def installed_kernels() -> list[str]:
    """Names of the installed kernel specs (lower-cased, as jupyter_client does), sorted."""
    from jupyter_core.paths import jupyter_path

    names: set[str] = set()
    for folder in jupyter_path("kernels"):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        names.update(e.lower() for e in entries if os.path.isfile(os.path.join(folder, e, "kernel.json")))
    if importlib.util.find_spec("ipykernel") is not None:
        names.add("python3")  # the native kernel jupyter_client always offers when ipykernel is importable
    return sorted(names)
