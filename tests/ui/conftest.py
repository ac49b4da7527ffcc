"""Fixtures for the UI tests: a small pipeline in a temp folder, JupyterLab serving it, Debian's Chromium."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.conftest import REPO, stop_processes_under, write_notebook

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("NBFLOW_SCREENSHOTS") or Path(__file__).parent / "screenshots")
_saved: list[Path] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STEP = "\nimport time\ntime.sleep(1)"  # each task runs a visible second: the panel must be able to show it running


def write_pipeline(root: Path) -> Path:
    """Four tasks: a -> b -> c (c fails when run with fail=True, in its cell 2), and a -> d; each takes ~1 s."""
    write_notebook(root / "a.ipynb", [
        ("n = 3", ["parameters"]),
        ("import pathlib\npathlib.Path('data').mkdir(exist_ok=True)\npathlib.Path('data/a.txt').write_text(str(n))" + STEP,
         ["writes:data/a.txt"]),
    ])
    write_notebook(root / "b.ipynb", [
        ("import pathlib\nx = int(pathlib.Path('data/a.txt').read_text())" + STEP, ["reads:data/a.txt"]),
        ("pathlib.Path('data/b.txt').write_text(str(x * 2))", ["writes:data/b.txt"]),
    ])
    write_notebook(root / "c.ipynb", [
        ("fail = False", ["parameters"]),
        ("import pathlib\ny = int(pathlib.Path('data/b.txt').read_text())" + STEP, ["reads:data/b.txt"]),
        "if fail:\n    y / 0",
    ])
    write_notebook(root / "d.ipynb", [("print('report')" + STEP, ["upstream:a"])])
    return root


def lab_command(root: Path, port: int, token: str, settings: Path) -> list[str]:
    return [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        f"--port={port}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.jpserver_extensions=nbflow.server=True",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={settings / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
    ]


def wait_for_server(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"jupyter lab did not answer at {url} in {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """JupyterLab serving a fresh copy of the small pipeline; stopped at the end of the module."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    if not (REPO / "nbflow" / "labextension" / "package.json").exists():
        pytest.skip("the labextension is not built: run `make setup`")
    base = tmp_path_factory.mktemp("ui")
    root = write_pipeline(base / "project")
    settings = base / "settings"
    notify = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notify.parent.mkdir(parents=True)
    notify.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), secrets.token_hex(16)
    log = base / "lab.log"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(lab_command(root, port, token, settings), cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{url}/api/status?token={token}", proc, log)
        yield {"url": url, "token": token, "root": str(root), "log": str(log)}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stop_processes_under(root)  # runners the server started live in sessions of their own


@pytest.fixture(scope="module")
def page(lab: dict[str, str]) -> Iterator[Page]:
    """One browser page on JupyterLab for the whole module (the tests build on each other's state)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        pg.goto(f"{lab['url']}/lab?token={lab['token']}")
        pg.wait_for_selector("#jp-main-dock-panel")
        pg.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('nbflow:open')")
        # keyboard shortcuts are bound once the settings load, after the commands (later still with more extensions,
        # such as jupytext's): the palette test presses one first thing
        pg.wait_for_function("() => window.jupyterapp.commands.keyBindings.some("
                             "k => k.command === 'apputils:activate-command-palette')")
        yield pg
        browser.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot where CI keeps it (tests/ui/screenshots or $NBFLOW_SCREENSHOTS) and report its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    _saved.append(path)
    print(f"screenshot: {path}")
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _saved:
        terminalreporter.section("nbflow panel screenshots")
        for path in _saved:
            terminalreporter.write_line(str(path))



@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A screenshot of the page when a UI test fails, to see what the panel showed."""
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and page is not None:
        try:
            screenshot(page, f"failed-{item.name}")
        except Exception:  # the page may be gone; the failure itself is what matters
            pass
    return report
