"""How a cell is named to people, everywhere (CLI, REST, logs, errors, the executed notebook's error markers).

nbflow stores a cell as its 0-based index in the *source* notebook, markdown cells included (papermill's injected
cells are not counted): `error_cell`, `check_cells` and compile errors keep that for API compatibility. People count
from 1, as JupyterLab's cell order does, and an executed notebook labels its code cells `In [n]`, so a cell is shown
as "cell 5 (In [7])": the 1-based position in the source notebook, then the execution count in the executed one when
there is one.
"""
from __future__ import annotations


def cell_label(index: int | None, execution_count: int | None = None) -> str:
    """'cell 5 (In [7])' for the 0-based source index 4 run as In [7]; 'cell 5' when it never ran; '' when unknown."""
    if index is None:
        return ""
    label = f"cell {index + 1}"
    return f"{label} (In [{execution_count}])" if execution_count is not None else label


def with_cell(message: str, index: int | None, execution_count: int | None = None) -> str:
    """'cell 5 (In [7]): check failed: AssertionError: ...', or the message alone when the cell is not known."""
    label = cell_label(index, execution_count)
    return f"{label}: {message}" if label else message
