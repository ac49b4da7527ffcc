"""Where attempts run. The engine sees only the Executor interface."""
from .base import Executor
from .local import LocalExecutor

__all__ = ["Executor", "LocalExecutor"]
