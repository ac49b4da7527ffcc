"""Drift checks: the package stays ruff- and mypy-clean."""
from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def test_ruff_clean():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "nbflow", "tests"], check=False, cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_clean():
    out = subprocess.run([sys.executable, "-m", "mypy", "nbflow"], check=False, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
