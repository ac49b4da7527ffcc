"""nbflow's SQLite store, the only module that writes SQL."""
from .store import Store

__all__ = ["Store"]
