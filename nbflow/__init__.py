"""nbflow: a folder of Jupyter notebooks becomes a pipeline."""
from .errors import NbflowError
from .project import Project

__all__ = ["NbflowError", "Project", "__version__"]
__version__ = "0.1.0"
