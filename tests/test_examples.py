"""The example pipeline in notebooks/: it runs end to end through nbflow, and nbval validates every notebook."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nbflow import Project

pytestmark = pytest.mark.kernel


def test_example_pipeline_runs_then_skips_then_validates(example_project):
    project = Project(example_project)
    assert project.compile().order == ("ingest", "clean", "features", "train", "report")
    summary = project.run({"run_date": "2026-01-01"})
    assert summary.ok, [(t.task, t.status, t.error) for t in summary.tasks]
    report = example_project / "notebooks" / "data" / "2026-01-01" / "report.md"
    assert report.exists() and "coefficient" in report.read_text().lower()
    metrics = json.loads((example_project / "notebooks/data/2026-01-01/metrics.json").read_text())
    assert metrics["r2"] > 0.5

    again = project.run({"run_date": "2026-01-01"})
    assert {t.status for t in again.tasks} == {"skipped"}

    tree = project.lineage(str(report))["path"]
    chain = []
    while tree:
        chain.append(tree["producer"]["task"] if tree["producer"] else None)
        tree = tree["inputs"][0] if tree["inputs"] else None
    assert chain == ["report", "train", "features", "clean", "ingest"]

    small = project.run({"run_date": "2026-01-02", "sample_size": 50})  # too little data: clean's gate stops the chain
    assert {t.task: t.status for t in small.tasks} == {"ingest": "succeeded", "clean": "check_failed",
                                                       "features": "upstream_failed", "train": "upstream_failed",
                                                       "report": "upstream_failed"}

    nbval = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
                            str(example_project / "notebooks")],
                           check=False, cwd=example_project, capture_output=True, text=True, timeout=300)
    assert nbval.returncode == 0, nbval.stdout[-3000:]
    assert " passed" in nbval.stdout
