"""Editing dependencies from JupyterLab in a real Chromium (issue 16): drag from a task's handle to add an upstream:
tag, Delete an upstream: edge, a path edge names its tags and opens their cells, a cycle is refused with the cycle
shown, Undo (Ctrl+Z and the message's button), an edit to an open notebook with unsaved changes, and the notebook
editor's pipeline sidebar. Every view is saved in the light and the dark theme (tests/ui/screenshots).

The tests share one JupyterLab (the small pipeline: a -> b -> c by paths, a -> d -> e by upstream: tags) and one
page, in file order.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from .conftest import shots

PANEL = ".jp-MainAreaWidget:not(.lm-mod-hidden) .nbflow-panel"


def tags(lab: dict[str, str], notebook: str) -> list[list[str]]:
    cells = json.loads((Path(lab["root"]) / notebook).read_text())["cells"]
    return [c.get("metadata", {}).get("tags", []) for c in cells]


def node(page: Page, task: str):
    return page.locator(f'{PANEL} .nbflow-node[data-task="{task}"]')


def edge(page: Page, source: str, target: str):
    return page.locator(f'{PANEL} .nbflow-edge-group[data-source="{source}"][data-target="{target}"]')


def message(page: Page):
    return page.locator(f"{PANEL} .nbflow-message")


def centre(box: dict[str, float]) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page: Page, source: str, target: str) -> None:
    """Press on the source task's handle, move over the target task, release."""
    node(page, source).hover()
    x, y = centre(node(page, source).locator(".nbflow-handle").bounding_box())
    tx, ty = centre(node(page, target).locator("rect").first.bounding_box())
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move((x + tx) / 2, (y + ty) / 2, steps=4)
    page.mouse.move(tx, ty, steps=4)
    expect(node(page, target)).to_have_class(re.compile(r"\bnbflow-drop-target\b"))
    page.mouse.up()


def click_edge(page: Page, source: str, target: str, button: str = "left") -> None:
    """Click the middle of an edge's line (its bounding box's centre may be off a curved line)."""
    x, y = page.evaluate("""([s, t]) => {
      const path = document.querySelector(`.jp-MainAreaWidget:not(.lm-mod-hidden) .nbflow-panel
        .nbflow-edge-group[data-source="${s}"][data-target="${t}"] .nbflow-edge`);
      const p = path.getPointAtLength(path.getTotalLength() / 2);
      const m = path.getScreenCTM();
      return [p.x * m.a + p.y * m.c + m.e, p.x * m.b + p.y * m.d + m.f];
    }""", [source, target])
    page.mouse.click(x, y, button=button)


def panel_tab(page: Page) -> None:
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="nbflow:").first.click()
    expect(page.locator(PANEL)).to_be_visible()


def notebook_js(page: Page, path: str, body: str):
    """Evaluate `body` with `w`, the open notebook widget of `path`."""
    return page.evaluate(f"""async (path) => {{
      const w = window.jupyterapp.shell.widgets('main').find(x => x.context && x.context.path === path);
      {body}
    }}""", path)


def test_drag_from_a_handle_adds_an_upstream_tag(page: Page, lab: dict[str, str]) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('nbflow:open', {path: ''}).then(() => null)")
    expect(page.locator(f"{PANEL} .nbflow-node")).to_have_count(5)
    expect(page.locator(f"{PANEL} .nbflow-handle")).to_have_count(5)
    expect(edge(page, "c", "e")).to_have_count(0)
    drag(page, "c", "e")
    expect(edge(page, "c", "e")).to_have_count(1)
    expect(edge(page, "c", "e")).to_have_attribute("data-via", "upstream")
    expect(message(page)).to_contain_text("e depends on c (upstream:c)")
    expect(message(page).locator(".nbflow-undo-button")).to_be_visible()
    # the file: e's first cell with an upstream: tag (its parameters cell) got it, nothing else changed
    assert tags(lab, "e.ipynb")[0] == ["parameters", "upstream:d", "upstream:c"]
    shots(page, "40-dep-added-by-drag")


def test_ctrl_z_undoes_the_edit(page: Page, lab: dict[str, str]) -> None:
    page.locator(f"{PANEL} .nbflow-canvas").focus()
    page.keyboard.press("Control+z")
    expect(edge(page, "c", "e")).to_have_count(0)
    expect(message(page)).to_contain_text("Undone: e depends on c")
    assert tags(lab, "e.ipynb")[0] == ["parameters", "upstream:d"]


def test_select_an_upstream_edge_and_delete_it_then_undo_by_button(page: Page, lab: dict[str, str]) -> None:
    click_edge(page, "a", "d")
    expect(edge(page, "a", "d")).to_have_class(re.compile(r"\bnbflow-edge-selected\b"))
    card = page.locator(f"{PANEL} .nbflow-edge-card")
    expect(card).to_be_visible()
    expect(card).to_contain_text("tag upstream:a in d.ipynb, cell 1")
    expect(card.locator(".nbflow-remove-dep")).to_be_visible()
    shots(page, "41-upstream-edge-card")
    page.keyboard.press("Delete")
    expect(edge(page, "a", "d")).to_have_count(0)
    expect(message(page)).to_contain_text("d no longer depends on a")
    assert tags(lab, "d.ipynb")[1] == []  # the cell's last tag: its tags key is gone
    shots(page, "42-dep-removed")
    message(page).locator(".nbflow-undo-button").click()
    expect(edge(page, "a", "d")).to_have_count(1)
    assert tags(lab, "d.ipynb")[1] == ["upstream:a"]
    # the context menu (right click) offers the same removal; Ctrl+Z brings it back
    click_edge(page, "a", "d", button="right")
    card.locator(".nbflow-remove-dep").click()
    expect(edge(page, "a", "d")).to_have_count(0)
    page.locator(f"{PANEL} .nbflow-canvas").focus()
    page.keyboard.press("Control+z")
    expect(edge(page, "a", "d")).to_have_count(1)
    assert tags(lab, "d.ipynb")[1] == ["upstream:a"]


def test_a_path_edge_names_its_tags_and_opens_their_cells(page: Page) -> None:
    click_edge(page, "a", "b")
    card = page.locator(f"{PANEL} .nbflow-edge-card")
    expect(card).to_contain_text("writes:data/a.txt in a.ipynb, cell 1")
    expect(card).to_contain_text("reads:data/a.txt in b.ipynb, cell 0")
    expect(card.locator(".nbflow-remove-dep")).to_have_count(0)
    shots(page, "43-path-edge-card")
    page.keyboard.press("Delete")  # not an upstream: tag: says so, removes nothing
    expect(message(page)).to_contain_text("not an upstream: tag")
    expect(edge(page, "a", "b")).to_have_count(1)
    click_edge(page, "a", "b")
    card.get_by_text("Open writes: cell").click()
    page.wait_for_function("""() => { const w = window.jupyterapp.shell.currentWidget;
      return w && w.context && w.context.path === 'a.ipynb' && w.content.activeCellIndex === 1; }""")
    notebook_js(page, "a.ipynb", "await w.close();")
    panel_tab(page)


def test_a_cycle_is_refused_and_shown(page: Page, lab: dict[str, str]) -> None:
    before = (Path(lab["root"]) / "a.ipynb").read_bytes()
    drag(page, "e", "a")  # a -> d -> e: a depending on e would close the loop
    expect(message(page)).to_have_attribute("data-kind", "dep-cycle")
    expect(message(page).locator(".nbflow-cycle")).to_have_text("Cycle: a → d → e → a")
    expect(edge(page, "e", "a")).to_have_count(0)
    assert (Path(lab["root"]) / "a.ipynb").read_bytes() == before
    shots(page, "44-cycle-refused")


def test_an_open_notebook_with_unsaved_changes_gets_the_tag_in_its_document(page: Page, lab: dict[str, str]) -> None:
    on_disk = (Path(lab["root"]) / "c.ipynb").read_bytes()
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'c.ipynb'}).then(() => null)")
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(2)
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# an unsaved edit")
    page.keyboard.press("Escape")
    page.wait_for_function("""() => { const w = window.jupyterapp.shell.currentWidget;
      return w && w.context && w.context.path === 'c.ipynb' && w.context.model.dirty; }""")
    panel_tab(page)
    drag(page, "d", "c")
    expect(edge(page, "d", "c")).to_have_attribute("data-unsaved", "")  # drawn at once, dashed until saved
    expect(message(page)).to_contain_text("with unsaved changes")
    state = notebook_js(page, "c.ipynb", """return {dirty: w.context.model.dirty,
      tags: w.content.model.cells.get(0).getMetadata('tags'), source: w.content.model.cells.get(2).sharedModel.getSource()};""")
    assert state["dirty"] and state["tags"] == ["parameters", "upstream:d"]
    assert state["source"].endswith("# an unsaved edit")  # the user's edit is still there
    assert (Path(lab["root"]) / "c.ipynb").read_bytes() == on_disk  # nothing written behind the editor's back
    shots(page, "45-open-notebook-unsaved-edge")
    # undo works on the open document too, and redoing + saving writes both the user's edit and the tag
    page.locator(f"{PANEL} .nbflow-canvas").focus()
    page.keyboard.press("Control+z")
    expect(edge(page, "d", "c")).to_have_count(0)
    assert notebook_js(page, "c.ipynb", "return w.content.model.cells.get(0).getMetadata('tags');") == ["parameters"]
    drag(page, "d", "c")
    expect(edge(page, "d", "c")).to_have_attribute("data-unsaved", "")
    notebook_js(page, "c.ipynb", "await w.context.save();")
    expect(edge(page, "d", "c")).not_to_have_attribute("data-unsaved", "", timeout=30_000)
    saved = json.loads((Path(lab["root"]) / "c.ipynb").read_text())["cells"]
    assert saved[0]["metadata"]["tags"] == ["parameters", "upstream:d"]
    assert "".join(saved[2]["source"]).endswith("# an unsaved edit")


def test_the_pipeline_sidebar_follows_the_notebook(page: Page, lab: dict[str, str]) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'c.ipynb'}).then(() => null)")
    page.evaluate("() => window.jupyterapp.shell.activateById('nbflow-pipeline-sidebar')")
    side = page.locator("#nbflow-pipeline-sidebar")
    expect(side).to_be_visible()
    expect(side.locator(".nbflow-side-name")).to_have_text("c")
    expect(side.locator(".nbflow-side-upstream .nbflow-side-task-link")).to_have_text(["b", "d"])
    expect(side.locator(".nbflow-side-downstream")).to_contain_text("none")
    expect(side.locator(".nbflow-side-run")).to_have_text("never run")
    expect(side.locator(".nbflow-side-task .nbflow-badge")).to_have_text("pending")
    expect(side.locator(".nbflow-side-cell")).to_have_text(["parameters", "upstream:d", "reads:data/b.txt"])
    # jump to a cell
    side.locator('.nbflow-side-cell[data-cell="1"]').click()
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex === 1")
    expect(side.locator(".nbflow-side-tags")).to_contain_text("reads:data/b.txt")
    # the active cell's tags: pick cell 2 (no tags), complete a task name, then a path another task writes
    page.evaluate("() => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = 2; }")
    expect(side.locator(".nbflow-side-tags")).to_have_attribute("data-cell", "2")
    field = side.locator(".nbflow-tag-input")
    field.click()
    field.fill("upstream:")
    options = side.locator(".nbflow-tag-suggestion")
    expect(options).to_have_count(4)
    assert sorted(options.all_text_contents()) == ["upstream:a", "upstream:b", "upstream:d", "upstream:e"]
    field.fill("reads:")
    expect(options).to_have_text(["reads:data/a.txt", "reads:data/b.txt"])
    shots(page, "46-sidebar-completion")
    field.fill("a.t")
    expect(options).to_have_text(["reads:data/a.txt"])
    options.first.click()
    expect(side.locator('.nbflow-tag-chip[data-tag="reads:data/a.txt"]')).to_be_visible()
    # it had no unsaved changes: saved at once
    expect(side.locator(".nbflow-side-note")).to_have_text("Added reads:data/a.txt (cell 2; saved).")
    assert tags(lab, "c.ipynb")[2] == ["reads:data/a.txt"]
    shots(page, "47-sidebar-tag-added")
    # typed in full and Enter; then removed with its ×
    field.fill("upstream:e")
    page.keyboard.press("Enter")
    expect(side.locator(".nbflow-side-note")).to_have_text("Added upstream:e (cell 2; saved).")
    assert tags(lab, "c.ipynb")[2] == ["reads:data/a.txt", "upstream:e"]
    side.locator('.nbflow-tag-chip[data-tag="upstream:e"] .nbflow-tag-remove').click()
    expect(side.locator(".nbflow-side-note")).to_have_text("Removed upstream:e (cell 2; saved).")
    assert tags(lab, "c.ipynb")[2] == ["reads:data/a.txt"]


def test_the_sidebar_refuses_a_cycle(page: Page, lab: dict[str, str]) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'a.ipynb'}).then(() => null)")
    side = page.locator("#nbflow-pipeline-sidebar")
    expect(side.locator(".nbflow-side-name")).to_have_text("a")
    before = (Path(lab["root"]) / "a.ipynb").read_bytes()
    field = side.locator(".nbflow-tag-input")
    field.fill("upstream:e")
    page.keyboard.press("Enter")
    expect(side.locator(".nbflow-side-note")).to_contain_text("would make a dependency cycle: e → a → d → e")
    assert (Path(lab["root"]) / "a.ipynb").read_bytes() == before


def test_the_sidebar_shows_the_state_in_the_latest_run(page: Page, lab: dict[str, str]) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'c.ipynb'}).then(() => null)")
    side = page.locator("#nbflow-pipeline-sidebar")
    expect(side.locator(".nbflow-side-name")).to_have_text("c")
    started = page.evaluate("""async () => {
      const s = window.jupyterapp.serviceManager.serverSettings;
      const r = await fetch(s.baseUrl + 'nbflow/api/runs?project=', {method: 'POST', body: '{}',
        headers: {Authorization: 'token ' + s.token, 'Content-Type': 'application/json'}});
      return [r.status, await r.json()];
    }""")
    assert started[0] == 202, started
    run = started[1]["run_id"]
    # the sidebar follows the store by itself: the run's end shows without switching notebooks
    expect(side.locator(".nbflow-side-run")).to_have_text(f"latest run {run} (succeeded)", timeout=120_000)
    expect(side.locator(".nbflow-side-task .nbflow-badge")).to_have_text("succeeded")
    shots(page, "48-sidebar-after-a-run")
