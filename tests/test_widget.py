"""The ipywidgets view: the DAG as SVG with state colours, following a real run live, and stopping on close()."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

import nbflow
from nbflow import Project
from nbflow.widgets import STATE_FILL, PipelineWidget, svg

from .conftest import wait_for, write_notebook


def states_in(value: str) -> dict[str, str]:
    return dict(re.findall(r'data-task="([^"]+)" data-state="([^"]+)"', value))


def redrawn_until(w: PipelineWidget, predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    """Wait on the widget's own redraws (ipywidgets' observe, graph and header) until `predicate()` holds."""
    changed = threading.Event()
    for part in (w.graph, w.header):
        part.observe(lambda change: changed.set(), names="value")
    while not predicate():
        if not changed.wait(timeout):
            return bool(predicate())
        changed.clear()
    return True


@pytest.fixture
def small(tmp_path: Path) -> Path:
    write_notebook(tmp_path / "a.ipynb", [("n = 1", ["parameters"]), ("import time\ntime.sleep(1.5)\nopen('a.txt', 'w').write('a')",
                                                                     ["writes:a.txt"])])
    write_notebook(tmp_path / "b.ipynb", [("print(open('a.txt').read())", ["reads:a.txt"])])
    write_notebook(tmp_path / "c.ipynb", [("raise ValueError('c fails')", ["upstream:a"])])
    (tmp_path / "nbflow.toml").write_text("jobs = 2\n")
    return tmp_path


def test_svg_colours_nodes_by_state_and_lays_out_by_depth(small: Path) -> None:
    pipeline = Project(small).compile()
    drawn = svg(pipeline, {"a": "succeeded", "b": "running", "c": "skipped"})
    assert states_in(drawn) == {"a": "succeeded", "b": "running", "c": "skipped"}
    assert f'fill="{STATE_FILL["succeeded"]}"' in drawn and f'fill="{STATE_FILL["running"]}"' in drawn
    assert drawn.count('class="edge"') == 2 and 'stroke-dasharray' in drawn  # c's upstream: tag edge is dashed
    xs = {name: float(x) for name, x in re.findall(r'data-task="([^"]+)"[^>]*>.*?<rect x="([0-9.]+)"', drawn)}
    assert xs["a"] < xs["b"] == xs["c"]  # one column per depth
    assert states_in(svg(pipeline, {}))["b"] == "pending"


@pytest.mark.kernel
def test_widget_follows_a_run_live_and_close_stops_it(small: Path) -> None:
    project = Project(small)
    w = nbflow.widget(project, interval=0.2)
    try:
        assert isinstance(w, PipelineWidget) and w.following
        assert set(states_in(w.graph.value).values()) == {"pending"} and "no run yet" in w.header.value
        assert not (small / ".nbflow").exists()  # looking creates no store
        seen: list[dict[str, str]] = []
        w.graph.observe(lambda change: seen.append(states_in(change["new"])), names="value")
        summary = project.run()
        assert not summary.ok  # c fails
        # the tasks end before their run does: a poll may see them final while the run still reads running
        assert redrawn_until(w, lambda: states_in(w.graph.value) == {"a": "succeeded", "b": "succeeded", "c": "failed"}
                             and 'data-status="failed"' in w.header.value), (w.graph.value, w.header.value)
        assert any(s.get("a") == "running" for s in seen), seen  # the running state was shown while a ran
        run_id = summary.run_id
        assert run_id in w.header.value
        assert [v for _, v in w.picker.options] == ["latest", run_id]
    finally:
        w.close()
    assert not w.following  # its thread has ended: nothing redraws it any more
    frozen = w.graph.value
    project.store.create_run("later", trigger="test", logical_date="2026-01-01", parameters={}, selection={}, tasks=["a"])
    assert w.graph.value == frozen
    project.close()


@pytest.mark.kernel
def test_run_picker_shows_an_older_run(small: Path) -> None:
    project = Project(small)
    project.run(only=["a"])
    first = project.store.latest_run_id()
    project.store.create_run("second", trigger="test", logical_date="2026-01-01", parameters={}, selection={},
                             tasks=["a", "b", "c"])
    w = nbflow.widget(project, interval=0.1)
    try:
        assert set(states_in(w.graph.value).values()) == {"pending"}  # the latest run: all its tasks pending
        w.picker.value = first
        assert states_in(w.graph.value)["a"] == "succeeded" and first in w.header.value
        project.store.set_task_state("second", "b", "running")  # a change in another run: the choice stays
        changed = project.last_event_id()
        wait_for(lambda: w.seen_event_id >= changed, 10, "the widget to look at the new event")
        assert w.picker.value == first and states_in(w.graph.value)["a"] == "succeeded"
        w.picker.value = "latest"
        assert states_in(w.graph.value) == {"a": "pending", "b": "running", "c": "pending"}
    finally:
        w.close()
        project.close()
    with pytest.raises(Exception, match="no run"):
        nbflow.widget(small, run_id="nope")
