"""nbflow: a folder of Jupyter notebooks becomes a pipeline."""
from __future__ import annotations

import logging
from typing import Any

from .errors import NbflowError
from .project import Project

__all__ = ["NbflowError", "Project", "__version__", "widget"]
__version__ = "0.1.0"

# A library's own logger: nbflow's internal failures are logged here (with their tracebacks) and never reach a
# terminal unless the application configures logging.
logging.getLogger("nbflow").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    """`nbflow.widget(".")`: the notebook widget, imported on first use (ipywidgets is not needed to run pipelines)."""
    if name == "widget":
        from .widgets import widget

        return widget
    raise AttributeError(f"module 'nbflow' has no attribute {name!r}")
