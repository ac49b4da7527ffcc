"""The JupyterLab panel in a real Chromium: open it, run the pipeline, follow it live, inspect tasks and runs.

The tests share one JupyterLab and one page (module fixtures) and build on each other, in file order.
"""
from __future__ import annotations

import json
import re
import time
import urllib.request

from playwright.sync_api import Page, expect

from .conftest import screenshot

TASKS = ["a", "b", "c", "d"]
RUN_TIMEOUT = 45_000


def api(lab: dict[str, str], route: str) -> dict:
    req = urllib.request.Request(f"{lab['url']}/nbflow/api/{route}", headers={"Authorization": f"token {lab['token']}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def node(page: Page, task: str):
    return page.locator(f'.nbflow-panel .nbflow-node[data-task="{task}"]')


def panel_tab(page: Page) -> None:
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="nbflow:").first.click()


def start_run(page: Page, *, fail: bool = False, force: bool = False, expect_conflict: bool = False) -> None:
    page.click(".nbflow-panel .nbflow-run-button")
    form = page.locator(".nbflow-panel .nbflow-run-form")
    expect(form).to_be_visible()
    expect(form.locator('input[name="n"]')).to_have_value("3")  # pre-filled from the parameters cell
    form.locator('input[name="fail"]').set_checked(fail)
    form.locator("input.nbflow-force").set_checked(force)
    form.locator(".nbflow-start").click()
    if expect_conflict:
        return
    # The runner process of the previous run may still be exiting after recording its end; the server answers
    # 409 until it is gone (a second or two). A user would press Start again, and so does this helper.
    message = form.locator(".nbflow-form-message")
    deadline = time.monotonic() + 15
    while True:
        page.wait_for_function("f => f.hidden || /\\(\\d{3}\\)/.test(f.querySelector('.nbflow-form-message').textContent)",
                               arg=form.element_handle())
        if form.is_hidden() or "(409)" not in (message.text_content() or "") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
        form.locator(".nbflow-start").click()
    expect(form).to_be_hidden()


def test_palette_opens_the_panel_with_one_node_per_task(page: Page) -> None:
    page.locator("#jp-main-dock-panel").click()  # the shortcut goes to the focused app, not to the browser chrome
    page.keyboard.press("Control+Shift+C")
    page.wait_for_selector(".lm-CommandPalette-input", state="visible")
    page.fill(".lm-CommandPalette-input", "Open nbflow pipeline")
    page.keyboard.press("Enter")
    expect(page.locator(".nbflow-panel .nbflow-node")).to_have_count(len(TASKS))
    for t in TASKS:
        expect(node(page, t)).to_have_attribute("data-state", "pending")
    expect(page.locator(".nbflow-panel .nbflow-edge")).to_have_count(3)
    page.click(".nbflow-panel .nbflow-zoom-button >> text=Fit")
    expect(page.locator(".nbflow-panel .nbflow-run-label")).to_have_text("No runs yet")
    screenshot(page, "01-panel-opened")


def test_file_browser_and_launcher_offer_the_panel(page: Page) -> None:
    page.locator('.jp-DirListing-item[data-file-type="notebook"]', has_text="a.ipynb").click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Open nbflow pipeline").click()
    expect(page.locator(".nbflow-panel")).to_have_count(1)  # the notebook's project: the panel already open
    page.evaluate("() => window.jupyterapp.commands.execute('launcher:create')")
    card = page.locator(".jp-LauncherCard:visible", has_text="Open nbflow pipeline")
    expect(card).to_have_count(1)
    expect(card.locator("svg")).to_have_count(1)  # the nbflow icon
    screenshot(page, "00-launcher")
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").click()
    panel_tab(page)


RECORD_STATES = """() => {
  window.__nbflow_states = [];
  const obs = new MutationObserver(changes => {
    for (const c of changes) {
      window.__nbflow_states.push([c.target.getAttribute('data-task'), c.target.getAttribute('data-state')]);
    }
  });
  for (const n of document.querySelectorAll('.nbflow-panel .nbflow-node')) {
    obs.observe(n, {attributes: true, attributeFilter: ['data-state']});
  }
}"""


def test_run_turns_nodes_running_then_succeeded_and_adds_a_history_row(page: Page, lab: dict[str, str]) -> None:
    page.evaluate(RECORD_STATES)
    start_run(page)
    running = page.wait_for_selector('.nbflow-panel .nbflow-node[data-state="running"] rect', timeout=RUN_TIMEOUT)
    assert running is not None
    assert running.evaluate("r => getComputedStyle(r).animationName") == "nbflow-pulse"  # visibly active
    screenshot(page, "02-running")
    expect(page.locator('.nbflow-panel .nbflow-node[data-state="succeeded"]')).to_have_count(len(TASKS), timeout=RUN_TIMEOUT)
    expect(page.locator(".nbflow-panel")).to_have_attribute("data-run-status", "succeeded")
    screenshot(page, "03-succeeded")
    seen: list[list[str]] = page.evaluate("() => window.__nbflow_states")
    for t in TASKS:  # every node was shown running, then succeeded, updated in place (no new layout)
        states = [state for task, state in seen if task == t]
        assert "running" in states and states[-1] == "succeeded", (t, states)
        assert states.index("running") < len(states) - 1, (t, states)
    page.click('.nbflow-panel .nbflow-tab[data-tab="history"]')
    rows = page.locator(".nbflow-panel .nbflow-run-row")
    expect(rows).to_have_count(1)
    run_id = api(lab, "runs?project=")["runs"][0]["id"]
    expect(rows.first).to_have_attribute("data-run-id", run_id)
    expect(rows.first).to_contain_text("succeeded")
    page.click('.nbflow-panel .nbflow-tab[data-tab="graph"]')


def test_node_detail_opens_the_executed_notebook(page: Page) -> None:
    node(page, "b").click()
    detail = page.locator(".nbflow-panel .nbflow-detail")
    expect(detail).to_have_attribute("data-task", "b")
    expect(detail).to_contain_text("succeeded")
    expect(detail.locator(".nbflow-attempts-table tbody tr")).to_have_count(1)
    detail.locator(".nbflow-open-executed").click()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current")
    expect(tab).to_contain_text("b.ipynb")
    expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_be_visible()
    screenshot(page, "04-executed-notebook")
    panel_tab(page)


def test_failing_task_shows_red_with_its_error_and_cell(page: Page, lab: dict[str, str]) -> None:
    start_run(page, fail=True)
    failed = page.locator('.nbflow-panel .nbflow-node[data-task="c"][data-state="failed"]')
    expect(failed).to_have_count(1, timeout=RUN_TIMEOUT)
    expect(page.locator(".nbflow-panel")).to_have_attribute("data-run-status", "failed")
    for t in ("a", "b", "d"):  # their code, parameters and inputs are unchanged
        expect(node(page, t)).to_have_attribute("data-state", "skipped")
    fill = failed.locator("rect").evaluate("r => getComputedStyle(r).fill")
    assert fill == "rgb(229, 57, 53)", fill  # red
    node(page, "c").click()
    error = page.locator(".nbflow-panel .nbflow-detail .nbflow-error")
    expect(error).to_contain_text("ZeroDivisionError")
    cell = [t for t in api(lab, "pipeline?project=")["tasks"] if t["name"] == "c"][0]["error"]["cell"]
    assert cell is not None
    expect(error).to_contain_text(f"Error in cell {cell}:")
    expect(error).to_have_attribute("data-cell", str(cell))
    screenshot(page, "05-failed-task")


def test_lineage_of_a_task_shows_datasets_with_hashes_and_runs(page: Page) -> None:
    node(page, "b").click()
    page.click(".nbflow-panel .nbflow-detail .nbflow-open-lineage")
    view = page.locator(".nbflow-panel .nbflow-lineage-task")
    expect(view).to_contain_text("Task b")
    read = view.locator('.nbflow-dataset[data-path="data/a.txt"]')
    expect(read).to_have_count(1)
    expect(read.locator(".nbflow-hash")).to_contain_text(re.compile(r"sha256:[0-9a-f]{12}"))
    expect(view).to_contain_text("a #1")  # the producer of data/a.txt
    expect(view.locator('.nbflow-dataset[data-path="data/b.txt"]')).to_have_count(1)
    screenshot(page, "06-lineage")
    page.click('.nbflow-panel .nbflow-tab[data-tab="graph"]')


def test_choosing_a_past_run_shows_its_states(page: Page) -> None:
    page.click('.nbflow-panel .nbflow-tab[data-tab="history"]')
    rows = page.locator(".nbflow-panel .nbflow-run-row")
    expect(rows).to_have_count(2)
    older = rows.nth(1).get_attribute("data-run-id")
    rows.nth(1).click()
    expect(page.locator(".nbflow-panel")).to_have_attribute("data-run-id", older or "")
    expect(node(page, "c")).to_have_attribute("data-state", "succeeded")
    expect(page.locator(".nbflow-panel .nbflow-run-label")).to_contain_text(re.compile("Showing run"))
    page.click(".nbflow-panel .nbflow-latest-button")
    expect(node(page, "c")).to_have_attribute("data-state", "failed")


def test_a_second_run_is_refused_visibly_and_cancel_stops_the_first(page: Page) -> None:
    start_run(page, force=True)
    page.wait_for_selector('.nbflow-panel .nbflow-node[data-state="running"]', timeout=RUN_TIMEOUT)
    start_run(page, expect_conflict=True)
    message = page.locator(".nbflow-panel .nbflow-form-message")
    expect(message).to_contain_text("409")
    expect(message).to_contain_text("is running and writes")  # the run claims rule: the first run holds data/a.txt
    screenshot(page, "07-refused")
    page.click(".nbflow-panel .nbflow-close-form")
    page.click(".nbflow-panel .nbflow-cancel-button")
    expect(page.locator(".nbflow-panel")).to_have_attribute("data-run-status", "cancelled", timeout=RUN_TIMEOUT)
    expect(page.locator('.nbflow-panel .nbflow-node[data-state="cancelled"]').first).to_be_visible()
