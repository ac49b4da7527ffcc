"""Fixtures for the UI tests: a small pipeline in a temp folder, JupyterLab serving it, Debian's Chromium."""
from __future__ import annotations

import contextlib
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


# A 120x40 blue PNG: a figure as matplotlib would leave it in the notebook (PNG renders in untrusted notebooks).
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAHgAAAAoCAIAAAC6iKlyAAAAZElEQVR4nO3QAQkAIADAMEsY0Z5Gs4XCHTzA2Zhr60Lj+cEngQbdCjToVqBBtwINuhVo0K1A"
       "g24FGnQr0KBbgQbdCjToVqBBtwINuhVo0K1Ag24FGnQr0KBbgQbdCjToVqBBtzqa4QDa7Z0DtwAAAABJRU5ErkJggg==")


def write_pipeline(root: Path) -> Path:
    """Five tasks: a -> b -> c (c fails when run with fail=True, in its cell 2), a -> d (a markdown cell and a
    figure), and d -> e (four cells that each sleep `pause` seconds, to watch it run); each takes ~1 s."""
    write_notebook(root / "a.ipynb", [
        ("n = 3\nrun_date = '2026-01-01'", ["parameters"]),
        ("import pathlib\npathlib.Path('data').mkdir(exist_ok=True)\npathlib.Path('data/a.txt').write_text(str(n))" + STEP,
         ["writes:data/a.txt"]),
    ])
    write_notebook(root / "b.ipynb", [
        ("import pathlib\nx = int(pathlib.Path('data/a.txt').read_text())" + STEP, ["reads:data/a.txt"]),
        ("pathlib.Path('data/b.txt').write_text(str(x * 2) * 2000)\nprint('wrote b', x * 2)", ["writes:data/b.txt"]),
    ])
    write_notebook(root / "c.ipynb", [
        ("fail = False", ["parameters"]),
        ("import pathlib\ny = int(pathlib.Path('data/b.txt').read_text()[:1])" + STEP, ["reads:data/b.txt"]),
        "if fail:\n    y / 0",
    ])
    write_notebook(root / "d.ipynb", [
        "#md # Report\nThe **report** of the run.",
        ("print('report')" + STEP, ["upstream:a"]),
        f"import base64\nfrom IPython.display import Image, display\ndisplay(Image(base64.b64decode({PNG!r})))",
    ])
    write_notebook(root / "e.ipynb", [
        ("pause = 0.0", ["parameters", "upstream:d"]),
        *[f"import time\ntime.sleep(pause)\nprint('step {i}')" for i in range(1, 5)],
    ])
    return root


def write_big_pipeline(root: Path, n: int = 300, folders: int = 10) -> Path:
    """n never-run notebooks in `folders` folders (`amer/t003`), each folder a chain of layers of 6 tasks."""
    regions = ["amer", "emea", "apac", "latam", "nordics", "dach", "benelux", "iberia", "anz", "india"]
    per = n // folders
    for f in range(folders):
        for i in range(per):
            layer, pos = divmod(i, 6)
            tags = []
            if layer:
                prev = range((layer - 1) * 6, min(layer * 6, per))
                tags = [f"upstream:{regions[f]}/t{u:03d}" for u in sorted({prev[pos % len(prev)], prev[(pos * 5 + 1) % len(prev)]})]
            elif f % 2:
                tags = [f"upstream:{regions[f - 1]}/t000"]
            write_notebook(root / regions[f] / f"t{i:03d}.ipynb", [("x = 1", ["parameters"]), ("y = x + 1", tags)])
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
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """JupyterLab serving a fresh copy of the small pipeline (and, in `big/`, 300 tasks in 10 folders); stopped at
    the end of the module."""
    base = tmp_path_factory.mktemp("ui")
    if getattr(request.module, "LAYOUT", "small") == "big":  # the server's root holds big/ and small/, two projects
        root = base / "root"
        write_big_pipeline(root / "big")
        write_pipeline(root / "small")
        for name in ("big", "small"):
            (root / name / "nbflow.toml").write_text(f'name = "{name}"\n')
    else:
        root = write_pipeline(base / "project")
    with serve_lab(base, root) as served:
        yield served


@contextlib.contextmanager
def serve_lab(base: Path, root: Path) -> Iterator[dict[str, str]]:
    """JupyterLab with nbflow's server extension serving `root` (settings and logs under `base`), stopped on exit,
    with the runners it started."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    if not (REPO / "nbflow" / "labextension" / "package.json").exists():
        pytest.skip("the labextension is not built: run `make setup`")
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
        pg.wait_for_selector("#jp-main-dock-panel", timeout=90_000)  # a loaded machine
        pg.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('nbflow:open')")
        pg.evaluate("() => window.jupyterapp.restored.then(() => null)")  # the layout restored: nothing moves after this
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


def set_theme(page: Page, dark: bool) -> None:
    """Switch JupyterLab's theme and wait until its variables apply."""
    theme = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.evaluate("t => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", theme)
    page.wait_for_function("d => document.body.dataset.jpThemeLight === (d ? 'false' : 'true')", arg=dark)
    page.wait_for_function("d => { const c = getComputedStyle(document.body).getPropertyValue('--jp-layout-color1').trim();"
                           " return c && (d ? c !== 'white' && c !== '#ffffff' : true); }", arg=dark)
    page.wait_for_timeout(150)  # one more paint with the new colours


def shots(page: Page, name: str) -> list[Path]:
    """The same view in the light and the dark theme: `NAME-light.png` and `NAME-dark.png`."""
    out = [screenshot(page, f"{name}-light")]
    set_theme(page, True)
    try:
        out.append(screenshot(page, f"{name}-dark"))
    finally:
        set_theme(page, False)
    return out


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours."""
    def lum(css: str) -> float:
        inner = css[css.index("(") + 1:css.index(")")]
        if css.startswith("color(srgb"):  # what Chromium gives for color-mix(): channels from 0 to 1
            chan = [float(x) for x in inner.split()[1:4]]
        else:
            chan = [float(x) / 255 for x in inner.replace("/", ",").replace(" ", ",").split(",") if x][:3]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in chan]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    a, b = sorted((lum(fg), lum(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


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
