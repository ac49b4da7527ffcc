"""Forecasts in a real run: a task much slower than its recorded history raises one "slow" warning while it runs,
and a task SLA is reported at risk from the forecast, then missed. Thresholds are configured small."""
from __future__ import annotations

import pytest

from nbflow import Project

from .conftest import write_notebook
from .test_ops_units import record_history
from .webhook import webhook

pytestmark = pytest.mark.kernel


def test_a_slow_task_warns_once_and_a_task_sla_is_at_risk_then_missed(tmp_path, monkeypatch):
    write_notebook(tmp_path / "crunch.ipynb", ["import time", "time.sleep(3)"])
    write_notebook(tmp_path / "late.ipynb", ["import time", "time.sleep(1.5)"])
    with webhook() as hook:
        url = hook.url("json")
        (tmp_path / "nbflow.toml").write_text(
            f'jobs = 2\n[alerts]\ncritical = ["{url}/crit"]\nwarning = ["{url}/warn"]\n'
            '[forecast]\nslow_margin = "0.5s"\n[tasks."late"]\nsla = "1s"\n')
        project = Project(tmp_path)
        record_history(project, monkeypatch, "crunch", [0.3, 0.3, 0.4])  # usually well under a second
        record_history(project, monkeypatch, "late", [3.0, 3.0, 3.2])  # usually 3 s: more than its 1 s SLA
        events: list[tuple[str, dict]] = []
        summary = project.run(on_event=lambda kind, data: events.append((kind, dict(data))))
        assert summary.ok
    warnings = [d["message"] for k, d in events if k == "warning"]
    slow = [w for w in warnings if "slow:" in w]
    assert len(slow) == 1 and slow[0].startswith("crunch slow: ") and slow[0].endswith("so far, usually 0.3–0.4 s")
    assert any(w.startswith("task late is at risk of missing its SLA: forecast finish") for w in warnings)
    missed_now = [w for w in warnings if w.startswith("task late missed its SLA: ")]
    assert len(missed_now) == 1 and ("still running" in missed_now[0] or "after its deadline" in missed_now[0]), warnings
    etas = [d for k, d in events if k == "eta" and d["eta"]]
    assert etas and etas[0]["critical_path"] and set(etas[0]["tasks"]) <= {"crunch", "late"}
    titles = [p["title"] for p in hook.received("/warn")]
    assert sum("crunch slow:" in t for t in titles) == 1 and any("late is at risk" in t for t in titles)
    [missed] = hook.received("/crit")
    assert "task late missed its SLA" in missed["title"] and "deadline" in missed["message"]
