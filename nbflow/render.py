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


def to_dot(pipeline: Pipeline, states: Mapping[str, str] | None = None, edge_labels: bool = False) -> str:
    """DOT source: one node per task (coloured by state when given), one edge per dependency (labelled with its reason
    when `edge_labels`: "upstream tag", "path data/x.csv")."""
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
        attrs = {"style": "dashed"} if e.reason == "upstream tag" else {}
        if edge_labels:
            attrs.update(label=e.reason, fontname="Helvetica", fontsize="10", fontcolor="#546e7a")
        g.edge(e.upstream, e.downstream, **attrs)
    return str(g.source)


def draw(dot: str, fmt: str) -> bytes:
    """Render DOT with Graphviz's `dot` program in any format it writes (png, pdf, svg, jpg, ...)."""
    import graphviz

    if fmt not in graphviz.FORMATS:
        raise NbflowError(f"Graphviz does not write '{fmt}' files. Fix: name the output *.png, *.pdf, *.svg, *.dot "
                          "or another format Graphviz writes (`dot -T?` lists them)")
    return _pipe(dot, fmt)


def to_svg(dot: str) -> bytes:
    """Render DOT to SVG with Graphviz's `dot` program."""
    return _pipe(dot, "svg")


def _pipe(dot: str, fmt: str) -> bytes:
    import graphviz

    try:
        return bytes(graphviz.Source(dot).pipe(format=fmt))
    except graphviz.ExecutableNotFound:
        raise NbflowError(
            "the Graphviz `dot` program is not installed, so SVG cannot be drawn. Fix: install Graphviz "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; conda: conda install graphviz), "
            f"or write DOT instead with -o dag.dot (asked for: {fmt})"
        ) from None
