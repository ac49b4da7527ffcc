"""OpenLineage events of real runs, received by an HTTP server on 127.0.0.1: each validates against the
OpenLineage JSON schemas vendored in tests/openlineage_spec (see SOURCE.md there), run ids are consistent between
the run (parent job) and its task attempts (child jobs), and the datasets are those `nbflow lineage` records."""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from nbflow import Project

from .conftest import write_notebook
from .webhook import closed_port, webhook

pytestmark = pytest.mark.kernel
SPEC = Path(__file__).parent / "openlineage_spec"
CORE = "https://openlineage.io/spec/1-0-2/OpenLineage.json"
FACETS = {"parent": "https://openlineage.io/spec/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet",
          "errorMessage": "https://openlineage.io/spec/facets/1-0-0/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
          "version": "https://openlineage.io/spec/facets/1-0-0/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
          "tags": "https://openlineage.io/spec/facets/2-0-3/TagsRunFacet.json#/$defs/TagsRunFacet"}


def validator(ref: str) -> jsonschema.Draft202012Validator:
    docs = [json.loads(p.read_text()) for p in [*SPEC.glob("*.json"), *SPEC.glob("facets/*.json")]]
    resources = [(d["$id"], Resource.from_contents(d)) for d in docs]
    core = json.loads((SPEC / "OpenLineage-1-0-2.json").read_text())  # stands in for 2-0-2's RunFacet (SOURCE.md)
    resources.append(("https://openlineage.io/spec/2-0-2/OpenLineage.json", Resource.from_contents(core)))
    registry: Registry = Registry().with_resources(resources)
    return jsonschema.Draft202012Validator({"$ref": ref}, registry=registry, format_checker=jsonschema.FormatChecker())


def check_schema(events: list[dict[str, Any]]) -> None:
    """Every event is a valid RunEvent and every facet valid against its own schema (and no facet goes unchecked)."""
    event_schema = validator(f"{CORE}#/$defs/RunEvent")
    facet_schemas = {name: validator(ref) for name, ref in FACETS.items()}
    for event in events:
        errors = [e.message for e in event_schema.iter_errors(event)]
        assert not errors, (errors, event)
        bags = [event["run"].get("facets", {}), event["job"].get("facets", {})]
        bags += [d.get("facets", {}) for d in event.get("inputs", []) + event.get("outputs", [])]
        for bag in bags:
            for name, facet in bag.items():
                assert name in facet_schemas, f"facet {name} has no vendored schema to check it"
                errors = [e.message for e in facet_schemas[name].iter_errors(facet)]
                assert not errors, (name, errors, facet)
    broken = dict(events[0], run={"runId": "not-a-uuid"})  # the check can fail
    assert list(event_schema.iter_errors(broken)) or not event_schema.format_checker.checkers.get("uuid")


def test_a_run_of_the_example_pipeline_emits_valid_consistent_events(example_project):
    with webhook() as backend:
        with open(example_project / "nbflow.toml", "a") as f:
            f.write(f'\n[openlineage]\ntransport = "http"\nurl = "{backend.url()}"\nnamespace = "analytics"\n')
        project = Project(example_project)
        summary = project.run({"run_date": "2026-03-01"})
        assert summary.ok, summary
        events = backend.received("/api/v1/lineage")
    check_schema(events)
    name = project.name
    parent = [e for e in events if e["job"]["name"] == name]
    assert [e["eventType"] for e in parent] == ["START", "COMPLETE"]
    assert events[0] is parent[0] and events[-1] is parent[1]  # the run brackets its tasks
    run_uuid = parent[0]["run"]["runId"]
    assert parent[1]["run"]["runId"] == run_uuid and all(e["job"]["namespace"] == "analytics" for e in events)
    tasks = [t.task for t in summary.tasks]
    assert sorted(tasks) == ["clean", "features", "ingest", "report", "train"]
    host = socket.gethostname()
    for task in tasks:
        mine = [e for e in events if e["job"]["name"] == f"{name}.{task}"]
        assert [e["eventType"] for e in mine] == ["START", "COMPLETE"], task
        assert mine[0]["run"]["runId"] == mine[1]["run"]["runId"] != run_uuid
        for e in mine:
            assert e["run"]["facets"]["parent"]["run"]["runId"] == run_uuid
            job = e["run"]["facets"]["parent"]["job"]
            assert (job["namespace"], job["name"]) == ("analytics", name)
        done = mine[1]
        lineage = project.lineage(task)["task"]
        expect_in = {(str(example_project / r["path"]), r["hash"]) for r in lineage["reads"]}
        expect_out = {(str(example_project / w["path"]), w["hash"]) for w in lineage["writes"]}
        got_in = {(d["name"], d["facets"]["version"]["datasetVersion"]) for d in done["inputs"]}
        got_out = {(d["name"], d["facets"]["version"]["datasetVersion"]) for d in done["outputs"]}
        assert got_in == expect_in and got_out == expect_out, task
        assert all(d["namespace"] == f"file://{host}" for d in done["inputs"] + done["outputs"])
    assert len({e["run"]["runId"] for e in events}) == len(tasks) + 1


def test_a_failed_task_carries_its_error_and_an_unreachable_backend_never_fails_a_run(tmp_path):
    write_notebook(tmp_path / "bad.ipynb", ["x = 1", "1 / 0"])
    with webhook() as backend:
        (tmp_path / "nbflow.toml").write_text(f'[openlineage]\nurl = "{backend.url()}"\n')
        summary = Project(tmp_path).run()
        assert summary.status == "failed"
        events = backend.received()
    check_schema(events)
    [fail] = [e for e in events if e["job"]["name"].endswith(".bad") and e["eventType"] == "FAIL"]
    assert fail["run"]["facets"]["errorMessage"]["message"] == "cell 1: ZeroDivisionError: division by zero"
    assert fail["run"]["facets"]["errorMessage"]["programmingLanguage"] == "python"
    assert [e["eventType"] for e in events if "." not in e["job"]["name"]] == ["START", "FAIL"]

    (tmp_path / "nbflow.toml").write_text(f'[openlineage]\nurl = "http://127.0.0.1:{closed_port()}"\ntimeout = 1\n')
    warnings: list[str] = []
    down = Project(tmp_path).run(on_event=lambda kind, data: warnings.append(data["message"]) if kind == "warning" else None)
    assert down.status == "failed" and down.tasks[0].error == summary.tasks[0].error  # the run's own outcome, unchanged
    assert any(w.startswith("OpenLineage: 4 of 4 events could not be sent to http://127.0.0.1:") for w in warnings), warnings

    (tmp_path / "nbflow.toml").write_text('[openlineage]\ntransport = "file"\npath = "lineage/events.jsonl"\n')
    Project(tmp_path).run()
    lines = (tmp_path / "lineage" / "events.jsonl").read_text().splitlines()
    check_schema([json.loads(line) for line in lines])
    assert [json.loads(line)["eventType"] for line in lines] == ["START", "START", "FAIL", "FAIL"]
