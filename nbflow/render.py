"""Draw a pipeline as Graphviz DOT, and as SVG when the `dot` program is installed."""
from __future__ import annotations

from collections.abc import Mapping

from .errors import NbflowError
from .model import Pipeline
from .states import TaskState

T = TaskState
STATE_COLORS: dict[str, str] = {
    T.PENDING: "#e0e0e0", T.QUEUED: "#cfd8dc", T.RUNNING: "#90caf9", T.SUCCEEDED: "#a5d6a7", T.SKIPPED: "#c8e6c9",
    T.FAILED: "#ef9a9a", T.CHECK_FAILED: "#ffcc80", T.UPSTREAM_FAILED: "#f8bbd0", T.CANCELLED: "#bdbdbd", T.CRASHED: "#ef9a9a",
    T.BLOCKED: "#ce93d8",
}


def to_dot(pipeline: Pipeline, states: Mapping[str, str] | None = None) -> str:
    """DOT source: one node per task (coloured by state when given), one edge per dependency."""
    import graphviz

    g = graphviz.Digraph("nbflow", graph_attr={"rankdir": "LR"},
                         node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fillcolor": "#ffffff"})
    for name, task in pipeline.tasks.items():
        label = name if not task.writes else name + "\n" + "\n".join(task.writes)
        attrs = {"tooltip": task.relpath}
        if states and name in states:
            attrs["fillcolor"] = STATE_COLORS.get(states[name], "#ffffff")
            label += f"\n[{states[name]}]"
        g.node(name, label=label, **attrs)
    for e in pipeline.edges:
        g.edge(e.upstream, e.downstream, **({"style": "dashed"} if e.reason == "upstream tag" else {}))
    return str(g.source)


def to_svg(dot: str) -> bytes:
    """Render DOT to SVG with Graphviz's `dot` program."""
    import graphviz

    try:
        return bytes(graphviz.Source(dot).pipe(format="svg"))
    except graphviz.ExecutableNotFound:
        raise NbflowError(
            "the Graphviz `dot` program is not installed, so SVG cannot be drawn. Fix: install Graphviz "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; conda: conda install graphviz), "
            "or write DOT instead with -o dag.dot"
        ) from None
