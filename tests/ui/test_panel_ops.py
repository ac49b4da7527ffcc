"""The panel's operations and placement views in a real Chromium (issues 12 and 13): alert deliveries (sent to a
local webhook, failed to a closed port), an open circuit breaker and its reset, a blocked task in its own colour, a
running run's ETA and a task's expected duration, and a run sent to Dask from the Run form whose attempt shows the
worker it ran on, its host, peak memory and CPU time. Light and dark screenshots of each.

The tests share one JupyterLab (root: ops/, one project) and one page, in file order; each builds on the last.
"""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import write_notebook
from tests.webhook import Webhook, closed_port, webhook

from .conftest import serve_lab, shots

RUN_TIMEOUT = 120_000
DASK_TIMEOUT = 240_000  # a local Dask cluster starts in the runner, then a kernel on its worker (a loaded machine)
PURPLE = "rgb(106, 27, 154)"  # --nbflow-blocked


def write_ops_project(root: Path, hook: str, down: str, dead: int) -> Path:
    """load (uses:warehouse; fails to connect to a closed port when offline) -> report; slow (sleeps `pause`)."""
    write_notebook(root / "load.ipynb", [
        ("offline = False", ["parameters"]),
        (f"import socket\nif offline:\n    socket.create_connection(('127.0.0.1', {dead}), timeout=2)\nprint('loaded')",
         ["uses:warehouse"]),
    ])
    write_notebook(root / "report.ipynb", [("print('report')", ["upstream:load"])])
    write_notebook(root / "slow.ipynb", [
        ("pause = 0.0", ["parameters"]),
        "import time\nblock = bytearray(30_000_000)\ntime.sleep(pause)\nprint('slept', pause)",
    ])
    (root / "nbflow.toml").write_text(
        'name = "ops"\n'
        f'[alerts]\ncritical = ["{hook}/crit", "{down}"]\nretries = 0\ntimeout = 2\n'
        '[breakers.warehouse]\nfailures = 1\nwindow = "15m"\ncooldown = "10m"\n'
        '[forecast]\nmin_history = 1\n'
        '[dask]\nlocal_workers = 1\nwait_for_workers = 120\n'
    )
    return root


@pytest.fixture(scope="module")
def hook() -> Iterator[Webhook]:
    with webhook() as h:
        yield h


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, hook: Webhook) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("ui-ops")
    root = base / "root"
    write_ops_project(root / "ops", hook.url("json"), f"json://127.0.0.1:{closed_port()}/down", closed_port())
    with serve_lab(base, root) as served:
        yield served


def api(lab: dict[str, str], route: str) -> dict:
    req = urllib.request.Request(f"{lab['url']}/nbflow/api/{route}", headers={"Authorization": f"token {lab['token']}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def panel(page: Page):
    return page.locator(".nbflow-panel")


def node(page: Page, task: str):
    return page.locator(f'.nbflow-panel .nbflow-node[data-task="{task}"]')


def tab(page: Page, name: str) -> None:
    page.click(f'.nbflow-panel .nbflow-tab[data-tab="{name}"]')


def start_run(page: Page, *, offline: bool = False, pause: float = 0.0, executor: str | None = None,
              only: list[str] | None = None, force: bool = False) -> str:
    """Fill the Run form, start, and return the new run's id once the panel shows it."""
    before = panel(page).get_attribute("data-run-id") or ""
    form = page.locator(".nbflow-panel .nbflow-run-form")
    if form.is_hidden():
        page.click(".nbflow-panel .nbflow-run-button")
    expect(form.locator('input[name="pause"]')).to_be_visible()
    form.locator('input[name="offline"]').set_checked(offline)
    form.locator('input[name="pause"]').fill(str(pause))
    form.locator("input.nbflow-force").set_checked(force)
    for t in only or []:
        form.locator(f'input.nbflow-only-task[value="{t}"]').check()
    if executor:
        form.locator("select.nbflow-executor").select_option(executor)
    form.locator(".nbflow-start").click()
    # The previous run's runner may still be exiting after recording its end: the server answers 409 until it is
    # gone (a second or two). A user presses Start again, and so does this helper, a few times.
    message = form.locator(".nbflow-form-message")
    for _ in range(30):
        page.wait_for_function("f => f.hidden || /\\(\\d{3}\\)/.test(f.querySelector('.nbflow-form-message').textContent)",
                               arg=form.element_handle(), timeout=RUN_TIMEOUT)
        if form.is_hidden() or "(409)" not in (message.text_content() or ""):
            break
        page.wait_for_timeout(500)
        form.locator(".nbflow-start").click()
    expect(form).to_be_hidden()
    expect(panel(page)).not_to_have_attribute("data-run-id", before, timeout=RUN_TIMEOUT)
    return panel(page).get_attribute("data-run-id") or ""


def wait_run_done(page: Page, timeout: int = RUN_TIMEOUT) -> None:
    expect(panel(page)).not_to_have_attribute("data-run-status", "running", timeout=timeout)


def test_a_failing_run_shows_its_alert_deliveries_and_the_open_breaker(page: Page, lab: dict[str, str], hook: Webhook) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('nbflow:open', {path: 'ops'}).then(() => null)")
    expect(node(page, "load")).to_have_count(1)
    start_run(page, offline=True)
    wait_run_done(page)
    expect(node(page, "load")).to_have_attribute("data-state", "failed")
    hook.wait(1, "/crit")  # the webhook got the critical alert
    tab(page, "operations")
    view = page.locator(".nbflow-panel .nbflow-view-operations")
    breaker = view.locator('tr[data-breaker="warehouse"]')
    expect(breaker).to_have_attribute("data-state", "open")
    expect(breaker).to_contain_text("1 of 1")
    expect(breaker).to_contain_text("load")
    expect(breaker.locator(".nbflow-breaker-error")).to_contain_text("Connection")
    failed_task = view.locator('.nbflow-alert-row[data-event="task_failed"][data-outcome="routed"]')
    expect(failed_task).to_have_count(1)
    expect(view.locator('.nbflow-alert-row[data-event="task_failed"]')).to_have_count(1)  # one failure, one alert
    expect(failed_task).to_have_attribute("data-severity", "critical")
    expect(failed_task.locator('.nbflow-delivery[data-status="sent"]')).to_contain_text("/crit")
    expect(failed_task.locator('.nbflow-delivery[data-status="failed"]')).to_contain_text("/down")
    expect(view.locator('.nbflow-alert-row[data-event="breaker_opened"]')).to_have_count(1)
    shots(page, "30-operations")


def test_a_blocked_task_has_its_colour_and_a_running_run_its_eta(page: Page, lab: dict[str, str]) -> None:
    tab(page, "graph")
    start_run(page, pause=8)  # the breaker is open: load is blocked, report upstream_failed; slow sleeps 8 s
    expect(node(page, "load")).to_have_attribute("data-state", "blocked", timeout=RUN_TIMEOUT)
    fill = node(page, "load").locator("rect").first.evaluate("r => getComputedStyle(r).fill")
    assert fill == PURPLE, fill
    expect(page.locator('.nbflow-panel .nbflow-legend .nbflow-badge[data-state="blocked"]')).to_have_text("blocked")
    expect(node(page, "slow")).to_have_attribute("data-state", "running", timeout=RUN_TIMEOUT)
    eta = page.locator(".nbflow-panel .nbflow-toolbar .nbflow-eta")
    expect(eta).to_contain_text("ETA ")  # slow has one success on record ([forecast] min_history = 1)
    assert float(eta.get_attribute("data-eta") or 0) > 0
    node(page, "slow").click()
    detail = page.locator(".nbflow-panel .nbflow-detail")
    expect(detail.locator(".nbflow-expected")).to_contain_text("median")
    expect(detail.locator(".nbflow-expected")).to_contain_text("p90")
    expect(detail.locator(".nbflow-expected-end")).to_be_visible()
    shots(page, "31-blocked-and-eta")
    node(page, "load").click()
    expect(detail).to_contain_text("blocked")  # the state badge; the reason names the breaker
    expect(detail).to_contain_text("warehouse")
    wait_run_done(page)
    expect(eta).to_have_count(0)  # no ETA once the run has ended


def test_a_local_attempt_shows_its_host_memory_and_cpu(page: Page) -> None:
    node(page, "slow").click()
    detail = page.locator(".nbflow-panel .nbflow-detail")
    expect(detail.locator('.nbflow-fact[data-fact="host"]')).not_to_be_empty()
    expect(detail.locator('.nbflow-fact[data-fact="peak_rss"]')).to_contain_text("MB")
    expect(detail.locator('.nbflow-fact[data-fact="cpu_seconds"]')).to_contain_text(" s")
    expect(detail.locator('.nbflow-fact[data-fact="worker"]')).to_have_count(0)  # it ran in the runner, not on Dask


def test_the_run_form_sends_a_run_to_dask_and_the_detail_shows_the_worker(page: Page, lab: dict[str, str]) -> None:
    page.click(".nbflow-panel .nbflow-run-button")
    choice = page.locator(".nbflow-panel select.nbflow-executor")
    expect(choice).to_have_value("local")  # the project's own
    expect(choice.locator('option[value="dask"]')).to_contain_text("a local cluster of 1 workers")
    choice.select_option("dask")
    shots(page, "33-run-form-executor")
    page.click(".nbflow-panel .nbflow-close-form")
    run = start_run(page, executor="dask", only=["slow"], force=True)
    wait_run_done(page, DASK_TIMEOUT)
    expect(panel(page)).to_have_attribute("data-run-status", "succeeded")
    [attempt] = [t for t in api(lab, f"runs/{run}?project=ops")["tasks"] if t["name"] == "slow"][0]["attempts"]
    assert attempt["worker"].startswith("tcp://127.0.0.1:"), attempt
    node(page, "slow").click()
    detail = page.locator(".nbflow-panel .nbflow-detail")
    expect(detail.locator('.nbflow-fact[data-fact="worker"]')).to_have_text(attempt["worker"])
    expect(detail.locator('.nbflow-fact[data-fact="host"]')).to_have_text(attempt["host"])
    expect(detail.locator('.nbflow-fact[data-fact="peak_rss"]')).to_contain_text("MB")
    expect(detail.locator('.nbflow-fact[data-fact="cpu_seconds"]')).to_contain_text(" s")
    shots(page, "32-dask-attempt")


def test_resetting_the_breaker_closes_it(page: Page, lab: dict[str, str]) -> None:
    tab(page, "operations")
    view = page.locator(".nbflow-panel .nbflow-view-operations")
    view.locator('tr[data-breaker="warehouse"] .nbflow-reset-breaker').click()
    expect(view.locator(".nbflow-breakers")).to_have_attribute("data-open", "0")
    expect(view.locator(".nbflow-breakers")).to_contain_text("All 1 closed")
    assert [b["state"] for b in api(lab, "breakers?project=ops")["breakers"]] == ["closed"]
    tab(page, "graph")
