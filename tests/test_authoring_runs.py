"""A jupytext pipeline, a Ploomber directory project and a pipeline.yaml project run end to end with real kernels,
from the CLI and through the REST API; the notebook-tags routes over a real Jupyter server."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbflow import Project

from .test_ploomber import PROJECTS
from .test_server import Api, jupyter_server
from .test_textnb import INGEST, text_project

pytestmark = pytest.mark.kernel


def nbflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)


def outputs(notebook: Path) -> str:
    """Every stream output of an executed notebook, joined."""
    cells = json.loads(notebook.read_text())["cells"]
    return "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_a_jupytext_pipeline_runs_from_the_cli(tmp_path):
    root = text_project(tmp_path / "p")
    done = nbflow("run", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    run = Project(root).show()
    artifacts = {t.task: Path(t.artifact or "") for t in run.tasks}
    assert {t.task: t.status for t in run.tasks} == {"ingest": "succeeded", "clean": "succeeded", "report": "succeeded"}
    assert artifacts["report"] == root / "nbflow-runs" / run.run.id / "report.ipynb"
    assert "report\n" in outputs(artifacts["report"])  # the executed artifact is an .ipynb with outputs
    assert (root / "data" / "x.csv").read_text() == "a\n" * 3
    # rewording the markdown of a text notebook changes no code: nothing re-runs
    (root / "ingest.py").write_text(INGEST.replace("# Ingest the data.", "# Ingest the data (reworded)."))
    again = Project(root).run()
    assert {t.status for t in again.tasks} == {"skipped"}
    # a failing cell is named by its index and by its line in the text file
    (root / "clean.py").write_text((root / "clean.py").read_text() + "\n# %%\n1 / 0\n")
    failed = Project(root).run()
    clean = next(t for t in failed.tasks if t.task == "clean")
    assert clean.status == "failed" and clean.error_cell == 2
    assert clean.error == "ZeroDivisionError: division by zero (clean.py line 21)"


def test_a_ploomber_directory_project_runs_unchanged(tmp_path):
    root = Path(shutil.copytree(PROJECTS / "ploomber-directory", tmp_path / "d"))
    done = nbflow("run", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    model = json.loads((root / "output" / "model.json").read_text())
    assert model["users"] > 20 and set(model["bands"]) >= {"0s", "20s"}
    # the executed notebook goes where the product says, besides nbflow-runs/
    copy = root / "output" / "clean-users.ipynb"
    assert "users kept" in outputs(copy)
    injected = next(c for c in json.loads(copy.read_text())["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert f'"data": "{root}/output/users.csv"' in "".join(injected["source"])
    assert len(Project(root).compile().tasks) == 5  # the notebook products are not tasks
    assert {t.status for t in Project(root).run().tasks} == {"skipped"}


def test_a_pipeline_yaml_project_runs_unchanged(tmp_path):
    root = Path(shutil.copytree(PROJECTS / "ploomber-yaml", tmp_path / "y"))
    done = nbflow("run", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len((root / "products" / "raw.csv").read_text().splitlines()) == 31  # rows: '{{rows}}' from env.yaml
    assert "<html" in (root / "products" / "clean.html").read_text()  # an .html notebook product, converted
    assert "rows profiled" in outputs(root / "products" / "profile.ipynb")
    above, total = (root / "products" / "report.txt").read_text().split(" above ")[0].split(" of ")
    assert 0 < int(above) <= int(total) < 31
    run = Project(root).show()
    assert {t.task: t.status for t in run.tasks} == dict.fromkeys(("get", "clean", "profile", "settings", "report"), "succeeded")


@pytest.fixture(scope="module")
def authoring_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Path]]:
    root = tmp_path_factory.mktemp("authoring") / "root"
    text_project(root / "text")
    shutil.copytree(PROJECTS / "ploomber-directory", root / "directory")
    shutil.copytree(PROJECTS / "ploomber-yaml", root / "yaml")
    shutil.copytree(Path(__file__).parent.parent / "notebooks", root / "example", ignore=shutil.ignore_patterns("data"))
    (root / "example" / "nbflow.toml").write_text("jobs = 2\n")
    with jupyter_server(root) as api:
        yield api, root


@pytest.mark.parametrize(("project", "tasks"), [("text", 3), ("directory", 5), ("yaml", 5)])
def test_post_runs_runs_each_kind_of_project(authoring_server: tuple[Api, Path], project: str, tasks: int) -> None:
    api, root = authoring_server
    started = api.post("runs", {}, project=project)
    assert started.status_code == 202, started.text
    run = api.wait_run(project, started.json()["run_id"], timeout=240)
    assert run["status"] == "succeeded", run
    assert len(run["tasks"]) == tasks and {t["state"] for t in run["tasks"]} == {"succeeded"}
    first = run["tasks"][0]
    assert first["path"].startswith(f"{project}/") and first["path"].endswith((".py", ".ipynb", ".md"))
    assert (root / first["path"]).is_file()


def test_notebook_tags_routes(authoring_server: tuple[Api, Path]) -> None:
    api, root = authoring_server
    info = api.get("notebook-tags", notebook="example/features.ipynb").json()
    assert info["task"] == "features" and info["project"] == "example" and info["path"] == "example/features.ipynb"
    assert info["downstream"] == ["train"] and {"path": "data/{run_date}/clean_sales.csv", "cell": 3} in info["reads"]
    assert "data/{run_date}/model.json" in info["written"]
    text = api.get("notebook-tags", notebook="text/ingest.py").json()
    assert text["format"] == "py:percent" and text["cell_lines"] == [1, 4, 7] and text["cell_tags"][1] == ["parameters"]

    before = (root / "example" / "ingest.ipynb").read_bytes()
    refused = api.post("notebook-tags", {"notebook": "example/ingest.ipynb", "cell": 1, "add": ["upstream:report"]})
    assert refused.status_code == 409 and refused.json()["cycle"][0] == refused.json()["cycle"][-1]
    assert "dependency cycle" in refused.json()["message"] and (root / "example" / "ingest.ipynb").read_bytes() == before
    bad = api.post("notebook-tags", {"notebook": "example/ingest.ipynb", "cell": 1, "add": ["retries:x"]})
    assert bad.status_code == 400 and "retries must be a whole number" in bad.json()["message"]

    added = api.post("notebook-tags", {"notebook": "text/report.md", "cell": 1, "add": ["upstream:ingest"]})
    assert added.status_code == 200, added.text
    report = next(t for t in added.json()["tasks"] if t["name"] == "report")
    assert report["upstream"] == ["clean", "ingest"]
    assert ':tags: ["upstream:clean", "upstream:ingest"]' in (root / "text" / "report.md").read_text()
    removed = api.post("notebook-tags", {"notebook": "text/report.md", "cell": 1, "remove": ["upstream:ingest"]})
    assert next(t for t in removed.json()["tasks"] if t["name"] == "report")["upstream"] == ["clean"]
    outside = api.get("notebook-tags", notebook="../secret.ipynb")
    assert outside.status_code == 404


def test_dependencies_route(authoring_server: tuple[Api, Path]) -> None:
    api, root = authoring_server
    report = root / "example" / "report.ipynb"
    before = report.read_bytes()
    added = api.post("dependencies", {"task": "report", "upstream": "ingest"}, project="example")
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["edits"] == [{"notebook": "example/report.ipynb", "cell": 1, "add": ["upstream:ingest"], "remove": []}]
    edge = next(e for e in body["pipeline"]["edges"] if (e["source"], e["target"]) == ("ingest", "report"))
    assert edge["via"] == ["upstream tag"]
    refused = api.post("dependencies", {"task": "ingest", "upstream": "report"}, project="example")
    assert refused.status_code == 409 and refused.json()["cycle"][0] == refused.json()["cycle"][-1]
    removed = api.post("dependencies", {"task": "report", "upstream": "ingest", "action": "remove"}, project="example")
    assert removed.status_code == 200 and removed.json()["edits"][0]["remove"] == ["upstream:ingest"]
    assert report.read_bytes() == before
    path_edge = api.post("dependencies", {"task": "clean", "upstream": "ingest", "action": "remove"}, project="example")
    assert path_edge.status_code == 400 and "reads:/writes:" in path_edge.json()["message"]
    assert api.post("dependencies", {"task": "report", "upstream": "ingest", "action": "drop"}, project="example").status_code == 400
