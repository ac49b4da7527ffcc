"""`nbflow report` in a real browser: the file opens from disk (file://), loads nothing, logs no error, and every link
in it resolves; a screenshot is kept for people to look at."""
from __future__ import annotations

import base64
import os
import struct
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from nbflow import Project
from tests.conftest import write_notebook

from .conftest import CHROMIUM, screenshot

pytestmark = pytest.mark.kernel


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A small solid-colour PNG, made here (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def write_project(root: Path) -> Path:
    """a writes data/a.txt and shows a figure; b reads it and its check fails when n > 5."""
    figure = base64.b64encode(png(120, 40, (30, 136, 229))).decode()
    write_notebook(root / "a.ipynb", [
        "#md # Make the data",
        ("n = 3", ["parameters"]),
        ("import os\nos.makedirs('data', exist_ok=True)\nopen('data/a.txt', 'w').write('a' * n)", ["writes:data/a.txt"]),
        f"import base64\nfrom IPython.display import Image, display\ndisplay(Image(data=base64.b64decode('{figure}')))",
    ])
    write_notebook(root / "b.ipynb", [
        ("text = open('data/a.txt').read()\nprint(len(text), 'characters')", ["reads:data/a.txt"]),
        ("assert len(text) <= 5, f'{len(text)} characters: too many'", ["check"]),
    ])
    return root


def test_the_report_opens_from_disk_with_no_error_and_every_link_resolves(tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    root = write_project(tmp_path / "project")
    with Project(root) as project:
        assert project.run().ok
        failed = project.run({"n": 9})
        assert not failed.ok
        path = Path(project.report(failed.run_id, tmp_path / "out" / "run.html"))
    assert path.exists() and not (tmp_path / "out" / "run_files").exists()  # one file: notebooks are inside it

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        page.wait_for_function("() => [...document.querySelectorAll('iframe.nb')].every(f => parseInt(f.style.height) > 100)")

        links = page.evaluate("""() => [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))""")
        assert links, "the report has links (its sections, each task's notebook)"
        for href in links:
            if href.startswith("#"):
                assert page.locator(f"[id='{href[1:]}']").count() == 1, f"link {href} points nowhere"
            else:
                assert not href.startswith(("http:", "https:", "//")), f"a link leaves the file: {href}"
                assert (path.parent / href).exists(), f"link {href} does not resolve"
        assert all(u.startswith(("file:", "data:", "about:")) for u in requested), requested

        tasks = page.locator("#tasks").locator("xpath=following-sibling::table[1]")
        assert "check_failed" in tasks.inner_text() and "cell 2 (In [" in tasks.inner_text()
        assert "too many" in tasks.inner_text()
        assert page.locator("svg g.node[data-task='b'][data-state='check_failed']").count() == 1
        frame = page.frame_locator("#task-a iframe")
        image = frame.locator("img[src^='data:image/png']")
        assert image.count() == 1 and image.evaluate("img => img.naturalWidth") == 120  # the figure, inline
        assert "characters" in page.frame_locator("#task-b iframe").locator("body").inner_text()
        screenshot(page, "report-top")
        page.locator("#task-a").scroll_into_view_if_needed()
        screenshot(page, "report-notebook")
        browser.close()
    assert not problems, problems
