"""The JupyterLab panel in a real Chromium: open it, run the pipeline, follow it live, inspect tasks and runs, resume,
queue, compare, schedule; every view is saved in the light and the dark theme (tests/ui/screenshots).

The tests share one JupyterLab and one page (module fixtures) and build on each other, in file order.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .conftest import contrast, set_theme, shots

TASKS = ["a", "b", "c", "d", "e"]
RUN_TIMEOUT = 60_000


def api(lab: dict[str, str], route: str) -> dict:
    req = urllib.request.Request(f"{lab['url']}/nbflow/api/{route}", headers={"Authorization": f"token {lab['token']}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def node(page: Page, task: str):
    return page.locator(f'.nbflow-panel .nbflow-node[data-task="{task}"]')


def panel_tab(page: Page) -> None:
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="nbflow:").first.click()


def tab(page: Page, name: str) -> None:
    page.click(f'.nbflow-panel .nbflow-tab[data-tab="{name}"]')


def open_form(page: Page):
    form = page.locator(".nbflow-panel .nbflow-run-form")
    if form.is_hidden():
        page.click(".nbflow-panel .nbflow-run-button")
    expect(form).to_be_visible()
    expect(form.locator('input[name="n"]')).to_have_value("3")  # pre-filled from the parameters cell
    return form


def start_run(page: Page, *, fail: bool = False, force: bool = False, pause: float = 0.0, only: list[str] | None = None,
              queue: bool = False, expect_refusal: bool = False) -> None:
    form = open_form(page)
    form.locator('input[name="fail"]').set_checked(fail)
    form.locator('input[name="pause"]').fill(str(pause))
    form.locator("input.nbflow-force").set_checked(force)
    form.locator("input.nbflow-queue").set_checked(queue)
    for t in only or []:
        form.locator(f'input.nbflow-only-task[value="{t}"]').check()
    form.locator(".nbflow-start").click()
    if expect_refusal:
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


def wait_run_done(page: Page) -> None:
    expect(page.locator(".nbflow-panel")).not_to_have_attribute("data-run-status", "running", timeout=RUN_TIMEOUT)


def test_palette_opens_the_panel_titled_by_its_folder(page: Page) -> None:
    # The modal palette closes when something else takes focus (the launcher of a fresh page may, late): retry.
    for _ in range(5):
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:activate-command-palette').then(() => null)")
        try:
            page.locator(".lm-CommandPalette-input").fill("Open nbflow pipeline", timeout=5_000)
            page.keyboard.press("Enter")
            page.wait_for_selector(".nbflow-panel", timeout=5_000)
            break
        except PlaywrightTimeout:
            continue
    expect(page.locator(".nbflow-panel .nbflow-node")).to_have_count(len(TASKS))
    for t in TASKS:
        expect(node(page, t)).to_have_attribute("data-state", "pending")
    expect(page.locator(".nbflow-panel .nbflow-edge")).to_have_count(4)
    expect(page.locator(".nbflow-panel .nbflow-run-label")).to_have_text("No runs yet")
    # a project at the server's root is titled by its folder's name, not "/"
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current")).to_contain_text("nbflow: project")
    shots(page, "01-panel-opened")


def test_file_browser_and_launcher_offer_the_panel_and_focus_the_open_one(page: Page) -> None:
    page.locator('.jp-DirListing-item[data-file-type="notebook"]', has_text="a.ipynb").click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Open nbflow pipeline").click()
    expect(page.locator(".nbflow-panel")).to_have_count(1)  # the notebook's project: the panel already open, focused
    page.evaluate("() => window.jupyterapp.commands.execute('launcher:create').then(() => null)")
    card = page.locator(".jp-LauncherCard:visible", has_text="Open nbflow pipeline")
    expect(card).to_have_count(1)
    expect(card.locator("svg")).to_have_count(1)  # the nbflow icon
    card.click()
    expect(page.locator(".nbflow-panel")).to_have_count(1)
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current")).to_contain_text("nbflow:")
    launcher = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Launcher")
    if launcher.count():
        launcher.locator(".lm-TabBar-tabCloseIcon").click()
    panel_tab(page)


def test_run_form_shows_real_values_types_and_a_dry_run(page: Page) -> None:
    form = open_form(page)
    today = dt.date.today().isoformat()
    expect(form.locator('input[name="run_date"]')).to_have_value(today)  # what the run will use, not 2026-01-01
    meta = form.locator('label[for="nbflow-param-n"] + input + .nbflow-param-meta')
    expect(meta).to_contain_text("int")
    expect(meta).to_contain_text("a.ipynb")
    expect(form).to_contain_text("notebook default \"2026-01-01\"")
    form.locator(".nbflow-dry-run").click()
    rows = form.locator(".nbflow-dry-table tbody tr")
    expect(rows).to_have_count(len(TASKS))
    expect(rows.first).to_have_attribute("data-action", "run")
    expect(rows.first).to_contain_text("never succeeded before")
    form.locator('input[name="n"]').fill("three")
    form.locator(".nbflow-start").click()
    expect(form.locator(".nbflow-form-message")).to_contain_text("parameter n")
    expect(form.locator('input[name="n"]')).to_have_class(re.compile("nbflow-mod-refused"))
    shots(page, "02-run-form-dry-run")
    form.locator('input[name="n"]').fill("3")
    page.click(".nbflow-panel .nbflow-close-form")


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


def test_run_turns_nodes_running_then_succeeded_and_adds_a_history_column(page: Page, lab: dict[str, str]) -> None:
    page.evaluate(RECORD_STATES)
    start_run(page)
    running = page.wait_for_selector('.nbflow-panel .nbflow-node[data-state="running"] rect', timeout=RUN_TIMEOUT)
    assert running is not None
    assert running.evaluate("r => getComputedStyle(r).animationName") == "nbflow-pulse"  # visibly active
    shots(page, "03-running")
    expect(page.locator('.nbflow-panel .nbflow-node[data-state="succeeded"]')).to_have_count(len(TASKS), timeout=RUN_TIMEOUT)
    expect(page.locator(".nbflow-panel")).to_have_attribute("data-run-status", "succeeded")
    seen: list[list[str]] = page.evaluate("() => window.__nbflow_states")
    run_id = api(lab, "runs?project=")["runs"][0]["id"]
    took = {t["name"]: t["duration"] or 0.0 for t in api(lab, f"runs/{run_id}?project=")["tasks"]}
    for t in TASKS:  # every node ended succeeded, updated in place (no new layout), and was shown running when it ran
        states = [state for task, state in seen if task == t]  # long enough to be seen: the server looks for changes
        assert states and states[-1] == "succeeded", (t, states)  # every 0.2 s, then the panel fetches the state
        assert "running" in states or took[t] < 1.0, (t, states, took[t])
    assert sum("running" in [state for task, state in seen if task == t] for t in TASKS) >= 3, seen
    tab(page, "history")
    cols = page.locator(".nbflow-panel .nbflow-run-col")
    expect(cols).to_have_count(1)
    expect(cols.first).to_have_attribute("data-run-id", run_id)
    expect(cols.first).to_contain_text("succeeded")
    expect(page.locator('.nbflow-panel .nbflow-grid tr[data-task="c"] .nbflow-grid-cell')).to_have_attribute("data-state", "succeeded")
    tab(page, "graph")


def test_task_detail_shows_parameters_files_and_a_rendered_preview(page: Page) -> None:
    node(page, "a").click()
    detail = page.locator(".nbflow-panel .nbflow-detail")
    expect(detail).to_have_attribute("data-task", "a")
    expect(detail.locator(".nbflow-task-params")).to_contain_text("n")
    expect(detail.locator(".nbflow-task-params")).to_contain_text(dt.date.today().isoformat())
    expect(detail.locator(".nbflow-writes li[data-path='data/a.txt']")).to_contain_text("1 B")
    node(page, "b").click()
    expect(detail.locator(".nbflow-writes li[data-path='data/b.txt']")).to_contain_text("KB")
    expect(detail.locator(".nbflow-reads li[data-path='data/a.txt']")).to_contain_text("from a #1")
    node(page, "d").click()
    expect(detail).to_have_attribute("data-task", "d")
    detail.locator(".nbflow-watch-button").click()  # "Preview" for a finished task
    preview = detail.locator(".nbflow-preview")
    expect(preview.locator("h1")).to_contain_text("Report")  # markdown rendered (with its anchor link)
    expect(preview).to_contain_text("report")  # a stream output
    figure = preview.locator(".jp-RenderedImage img")  # the figure, rendered without a kernel
    expect(figure).to_have_count(1)
    assert figure.evaluate("i => i.complete && i.naturalWidth") == 120
    shots(page, "04-task-detail-preview")


def test_executed_notebook_opens_read_only_without_a_kernel(page: Page, lab: dict[str, str]) -> None:
    node(page, "b").click()
    page.locator(".nbflow-panel .nbflow-detail .nbflow-open-executed").click()
    current = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current")
    expect(current).to_contain_text(re.compile(r"b\.ipynb · run \d{8}T"))
    expect(current).to_have_class(re.compile("nbflow-artifact-tab"))
    nb = page.locator(".jp-NotebookPanel.nbflow-artifact:visible")
    expect(nb.locator(".nbflow-artifact-banner")).to_contain_text("read-only artifact")
    expect(nb.locator(".jp-Cell").first).to_be_visible()
    req = urllib.request.Request(f"{lab['url']}/api/sessions", headers={"Authorization": f"token {lab['token']}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        sessions = json.loads(r.read())
    assert not [s for s in sessions if s["path"].endswith("b.ipynb")], sessions  # no kernel was started for it
    editor = nb.locator(".jp-CodeCell .cm-content").first
    expect(editor).to_have_attribute("aria-readonly", "true")
    expect(editor).to_contain_text("run_id")  # the injected parameters cell, rendered
    before = editor.text_content()
    editor.click()
    page.keyboard.type("zzz")
    expect(editor).to_have_text(before or "")  # cells are read-only
    expect(current).not_to_have_class(re.compile("jp-mod-dirty"))
    shots(page, "05-artifact-tab")
    current.locator(".lm-TabBar-tabCloseIcon").click()
    panel_tab(page)


def test_failing_task_shows_red_with_its_error_and_retry_failed(page: Page, lab: dict[str, str]) -> None:
    start_run(page, fail=True)
    failed = page.locator('.nbflow-panel .nbflow-node[data-task="c"][data-state="failed"]')
    expect(failed).to_have_count(1, timeout=RUN_TIMEOUT)
    expect(page.locator(".nbflow-panel")).to_have_attribute("data-run-status", "failed")
    for t in ("a", "b", "d", "e"):  # their code, parameters and inputs are unchanged
        expect(node(page, t)).to_have_attribute("data-state", "skipped")
    fill = failed.locator("rect").first.evaluate("r => getComputedStyle(r).fill")
    assert fill == "rgb(198, 40, 40)", fill  # red
    node(page, "c").click()
    error = page.locator(".nbflow-panel .nbflow-detail .nbflow-error")
    expect(error).to_contain_text("ZeroDivisionError")
    found = [t for t in api(lab, "pipeline?project=")["tasks"] if t["name"] == "c"][0]["error"]
    expect(error).to_contain_text(f"Error in {found.get('cell_label') or 'cell ' + str(found['cell'])}:")
    retry = page.locator(".nbflow-panel .nbflow-resume-button")
    expect(retry).to_have_text("Retry failed")
    shots(page, "06-failed-task")
    run_id = page.locator(".nbflow-panel").get_attribute("data-run-id")
    retry.click()  # the same run again: c gets attempt 2 (and fails again: the run's parameters still say fail)
    attempts = page.locator(".nbflow-panel .nbflow-detail .nbflow-attempts-table tbody tr")
    expect(attempts).to_have_count(2, timeout=RUN_TIMEOUT)
    wait_run_done(page)
    assert page.locator(".nbflow-panel").get_attribute("data-run-id") == run_id
    error_cell = attempts.first.locator(".nbflow-attempt-error")
    assert error_cell.evaluate("e => e.scrollHeight <= e.clientHeight + 2")  # one line, not six
    attempts.first.locator(".nbflow-log-button").click()  # the log opens in its own scrollable tab
    expect(page.locator(".nbflow-log-viewer:visible")).to_contain_text("ZeroDivisionError")
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").click()


def test_lineage_prefills_suggests_opens_and_draws(page: Page) -> None:
    panel_tab(page)
    node(page, "b").click()
    tab(page, "lineage")
    view = page.locator(".nbflow-panel .nbflow-lineage-task")
    expect(view).to_contain_text("Task b")  # pre-filled from the selected task
    read = view.locator('.nbflow-dataset[data-path="data/a.txt"]').first
    expect(read.locator(".nbflow-hash")).to_contain_text(re.compile(r"sha256:[0-9a-f]{12}"))
    expect(view.locator('.nbflow-dataset[data-path="data/b.txt"] .nbflow-size')).to_contain_text("KB")
    expect(view.locator(".nbflow-run-link").first).to_have_css("text-decoration-line", "underline")
    expect(view.locator(".nbflow-lineage-graph .nbflow-lg-file")).not_to_have_count(0)
    page.select_option(".nbflow-panel .nbflow-lineage-kind", "path")
    page.fill(".nbflow-panel .nbflow-lineage-target", "data/")
    expect(page.locator(".nbflow-panel .nbflow-lineage-form datalist option")).to_have_count(2)  # data/a.txt, data/b.txt
    shots(page, "07-lineage")
    read.locator(".nbflow-open-file").click()
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current")).to_contain_text("a.txt")
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").click()
    panel_tab(page)
    tab(page, "graph")


def test_history_grid_filters_hides_no_op_runs_and_diffs_parameters(page: Page) -> None:
    start_run(page)  # fail=False again: c is up to date with the first run's attempt, so nothing runs
    wait_run_done(page)
    start_run(page)  # nothing changed either
    wait_run_done(page)
    tab(page, "history")
    cols = page.locator(".nbflow-panel .nbflow-run-col")
    expect(cols).to_have_count(2)  # the two runs where nothing ran are hidden
    expect(page.locator(".nbflow-panel .nbflow-pager")).to_contain_text("nothing ran are hidden")
    page.check(".nbflow-panel .nbflow-filter-all")
    expect(cols).to_have_count(4)
    page.uncheck(".nbflow-panel .nbflow-filter-all")
    failed = page.locator('.nbflow-panel .nbflow-run-col[data-status="failed"]')
    expect(failed.locator(".nbflow-run-params")).to_contain_text("fail=true")  # differs from the run before it
    page.select_option(".nbflow-panel .nbflow-filter-status", "failed")
    expect(cols).to_have_count(1)
    page.select_option(".nbflow-panel .nbflow-filter-status", "")
    expect(cols).to_have_count(2)
    failed.click()  # shows that run on the graph
    tab(page, "history")
    # the current run's column is marked, readable in both themes
    current = page.locator(".nbflow-panel .nbflow-run-col.nbflow-mod-current")
    expect(current).to_have_attribute("data-status", "failed")
    shots(page, "08-history-grid")
    set_theme(page, True)
    try:
        fg, bg = current.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
        assert contrast(fg, bg) >= 4.5, (fg, bg)
    finally:
        set_theme(page, False)
    # the duration trend of a task over its runs
    page.click(".nbflow-panel .nbflow-latest-button")
    node(page, "c").click()
    expect(page.locator(".nbflow-panel .nbflow-detail .nbflow-sparkline polyline")).to_have_count(1)


def test_timeline_shows_phases_and_the_critical_path(page: Page) -> None:
    tab(page, "history")
    page.locator('.nbflow-panel .nbflow-run-col[data-status="succeeded"]').last.click()  # the first run: every task ran
    tab(page, "timeline")
    view = page.locator(".nbflow-panel .nbflow-view-timeline")
    expect(view.locator(".nbflow-gantt-row")).not_to_have_count(0)
    expect(view.locator('.nbflow-gantt-bar[data-phase="running"]').first).to_be_visible()
    expect(view.locator('.nbflow-gantt-bar[data-phase="kernel"]')).not_to_have_count(0)
    critical = view.get_attribute("data-critical") or ""
    assert critical.startswith("a") and critical.split(",")[-1] in ("c", "e"), critical
    expect(view.locator(".nbflow-critical")).not_to_have_count(0)
    shots(page, "09-timeline")
    page.click(".nbflow-panel .nbflow-latest-button")


def test_compare_two_runs(page: Page) -> None:
    tab(page, "history")
    picks = page.locator(".nbflow-panel .nbflow-pick-run")
    picks.nth(0).check()
    picks.nth(1).check()
    page.click(".nbflow-panel .nbflow-compare-button")
    view = page.locator(".nbflow-panel .nbflow-view-compare")
    expect(view).to_be_visible()
    expect(view.locator(".nbflow-compare-tasks")).to_be_visible(timeout=30_000)  # Project.diff through runs/compare
    expect(view.locator(".nbflow-compare-params")).to_contain_text("fail")
    expect(view.locator('.nbflow-compare-tasks tr[data-task="c"] .nbflow-badge')).to_have_count(2)
    view.locator('.nbflow-compare-tasks tr[data-task="c"] .nbflow-compare-cells').click()
    notebook = view.locator('.nbflow-compare-notebook[data-task="c"]')
    expect(notebook).to_be_visible(timeout=30_000)
    expect(view.locator(".nbflow-compare-tasks")).to_be_visible()  # the whole comparison stays above it
    shots(page, "10-compare")
    tab(page, "graph")


def test_watch_a_running_task_cell_by_cell(page: Page) -> None:
    start_run(page, pause=3, only=["e"])
    expect(node(page, "e")).to_have_attribute("data-state", "running", timeout=RUN_TIMEOUT)
    node(page, "e").click()
    detail = page.locator(".nbflow-panel .nbflow-detail")
    expect(detail).not_to_contain_text("hidden folder")
    watch = detail.locator(".nbflow-watch-button")
    expect(watch).to_have_text("Watch")
    expect(watch).to_be_enabled(timeout=RUN_TIMEOUT)  # once the first save wrote the notebook
    watch.click()
    box = detail.locator(".nbflow-preview-box")
    expect(box).to_have_attribute("data-cells", "5", timeout=RUN_TIMEOUT)  # its parameters cell and 4 steps
    expect(detail.locator(".nbflow-progress-text")).to_contain_text(re.compile(r"cell \d of 5"), timeout=RUN_TIMEOUT)
    first = int(box.get_attribute("data-cell") or 0)
    page.wait_for_function("n => Number(document.querySelector('.nbflow-panel .nbflow-preview-box').dataset.cell) > n",
                           arg=first, timeout=RUN_TIMEOUT)  # it follows the periodic saves
    shots(page, "11-watch-running")
    wait_run_done(page)
    expect(detail.locator(".nbflow-preview")).to_contain_text("step 4", timeout=RUN_TIMEOUT)


def test_queue_a_run_cancel_the_first_and_resume_it(page: Page, lab: dict[str, str]) -> None:
    start_run(page, force=True, pause=4)  # e's four cells take 16 s: the run is still going when it is cancelled
    page.wait_for_selector('.nbflow-panel .nbflow-node[data-state="running"]', timeout=RUN_TIMEOUT)
    first = page.locator(".nbflow-panel").get_attribute("data-run-id")
    start_run(page, expect_refusal=True)  # not queued: refused visibly
    message = page.locator(".nbflow-panel .nbflow-form-message")
    expect(message).to_contain_text("409")
    expect(message).to_contain_text("is running and")  # the run claims' message names the shared data
    shots(page, "12-refused")
    start_run(page, queue=True)
    expect(page.locator(".nbflow-panel .nbflow-message")).to_contain_text("Queued run")
    tab(page, "history")
    queued = page.locator('.nbflow-panel .nbflow-run-col[data-status="queued"]')
    expect(queued).to_have_count(1)
    queued_id = queued.get_attribute("data-run-id")
    shots(page, "13-history-queued")
    tab(page, "graph")
    page.click(".nbflow-panel .nbflow-cancel-button")
    expect(page.locator(".nbflow-panel .nbflow-message")).to_contain_text("Cancelling run")
    # the cancelled run ends, the banner goes, and the queued run starts by itself under its queued id
    expect(page.locator(".nbflow-panel")).to_have_attribute("data-run-id", queued_id or "", timeout=RUN_TIMEOUT)
    expect(page.locator(".nbflow-panel .nbflow-message")).not_to_contain_text("Cancelling")
    wait_run_done(page)
    assert api(lab, f"runs/{first}?project=")["status"] == "cancelled"
    tab(page, "history")
    page.check(".nbflow-panel .nbflow-filter-all")
    page.locator(f'.nbflow-panel .nbflow-run-col[data-run-id="{first}"]').click()
    resume = page.locator(".nbflow-panel .nbflow-resume-button")
    expect(resume).to_have_text("Resume")
    resume.click()
    expect(page.locator(".nbflow-panel")).to_have_attribute("data-run-status", "succeeded", timeout=RUN_TIMEOUT)
    assert api(lab, f"runs/{first}?project=")["status"] == "succeeded"
    page.click(".nbflow-panel .nbflow-latest-button")


def test_schedules_tab_adds_pauses_and_backfills(page: Page) -> None:
    tab(page, "schedules")
    view = page.locator(".nbflow-panel .nbflow-view-schedules")
    expect(view.locator('.nbflow-scheduler-status[data-running="false"]')).to_contain_text("nbflow scheduler")
    view.locator(".nbflow-open-schedule-form").click()
    form = view.locator(".nbflow-schedule-form")
    form.locator('[name="name"]').fill("quarterly")
    form.locator('[name="cron"]').fill("*/15 * * * *")
    form.locator('[name="timezone"]').fill("Europe/Paris")
    expect(form.locator(".nbflow-cron-words")).to_have_text("Every 15 minutes")
    expect(form.locator(".nbflow-cron-next")).to_contain_text(" · ")
    assert len((form.locator(".nbflow-cron-next").text_content() or "").split(" · ")) == 5
    form.locator('[name="cron"]').fill("61 * * * *")
    expect(form.locator('.nbflow-cron-preview[data-valid="false"]')).to_contain_text("minute")
    form.locator('[name="cron"]').fill("*/15 * * * *")
    shots(page, "14-schedule-form")
    form.locator(".nbflow-add-schedule").click()
    row = view.locator('tr[data-schedule="quarterly"]')
    expect(row).to_contain_text("Every 15 minutes")
    expect(row.locator(".nbflow-next-fires div")).to_have_count(3)
    row.locator(".nbflow-pause-schedule").click()
    expect(row).to_have_attribute("data-paused", "true")
    row.locator(".nbflow-resume-schedule").click()
    expect(row).to_have_attribute("data-paused", "false")
    view.locator(".nbflow-open-backfill").click()
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    view.locator('.nbflow-backfill-form [name="start"]').fill(yesterday)
    view.locator('.nbflow-backfill-form [name="end"]').fill(yesterday)
    view.locator(".nbflow-start-backfill").click()
    expect(view.locator(".nbflow-backfill")).to_be_visible()
    expect(view.locator('.nbflow-backfill[data-running="false"]')).to_contain_text("1 of 1 slots done", timeout=RUN_TIMEOUT)
    shots(page, "15-schedules")
    tab(page, "graph")


def test_an_nbflow_toml_edit_refreshes_the_graph_without_a_run(page: Page, lab: dict[str, str]) -> None:
    events = page.locator(".nbflow-panel").get_attribute("data-event-id")
    toml = Path(lab["root"]) / "nbflow.toml"
    toml.write_text('exclude = ["e.ipynb"]\n')
    try:
        expect(page.locator(".nbflow-panel .nbflow-node")).to_have_count(len(TASKS) - 1, timeout=15_000)
        assert page.locator(".nbflow-panel").get_attribute("data-event-id") == events  # no run, no store event
    finally:
        toml.unlink()
    expect(page.locator(".nbflow-panel .nbflow-node")).to_have_count(len(TASKS), timeout=15_000)


def test_errors_read_well_in_the_dark_theme(page: Page) -> None:
    tab(page, "history")
    page.locator('.nbflow-panel .nbflow-run-col[data-status="failed"]').first.click()
    node(page, "c").click()
    error = page.locator(".nbflow-panel .nbflow-detail .nbflow-error").first
    expect(error).to_be_visible()
    set_theme(page, True)
    try:
        fg, bg = error.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
        assert contrast(fg, bg) >= 4.5, (fg, bg)
        assert contrast("rgb(0, 0, 0)", bg) < 3, bg  # a dark box on the dark page, not a light one
    finally:
        set_theme(page, False)
    page.click(".nbflow-panel .nbflow-latest-button")


def test_reload_keeps_the_panel_of_the_root_project(page: Page) -> None:
    page.reload()
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('nbflow:open')")
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="nbflow: project")).to_have_count(1, timeout=30_000)
    expect(page.locator(".nbflow-panel .nbflow-node")).to_have_count(len(TASKS), timeout=30_000)
