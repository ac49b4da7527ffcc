"""Ploomber projects compile as they are: pipeline.yaml and parameters-cell declarations become edges, writes, reads
and injected values. No kernel (tests/test_authoring_runs.py runs them)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.errors import NotebookError, UnknownUpstreamError

from .conftest import HERE, write_notebook

PROJECTS = HERE / "projects"


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(PROJECTS / name, tmp_path / name))


def test_a_directory_of_scripts_declaring_upstream_and_product(tmp_path):
    root = copy("ploomber-directory", tmp_path)
    p = Project(root).compile()
    assert sorted(p.tasks) == ["clean-actions", "clean-users", "get-actions", "get-users", "train-model"]
    assert p.tasks["train-model"].upstream == ("clean-actions", "clean-users")
    edges = {(e.upstream, e.downstream): e.reason for e in p.edges}
    assert edges[("clean-users", "train-model")] == "Ploomber upstream" and len(edges) == 4
    train = p.tasks["train-model"]
    assert train.ploomber is not None and train.ploomber.origin == "parameters cell"
    assert train.writes == ("output/model-evaluation.ipynb", "output/model.json")
    assert train.reads == ("output/clean-users.csv", "output/clean-actions.csv")  # the upstream's products, not its notebook
    assert train.notebook_copies == (str(root / "output" / "model-evaluation.ipynb"),)
    assert train.output_dirs == (str(root / "output"),)
    # injected as Ploomber does: upstream by name -> its product, and the task's own product, with absolute paths
    assert train.injected["upstream"]["clean-users"] == {"nb": str(root / "output/clean-users.ipynb"),
                                                         "data": str(root / "output/clean-users.csv")}
    assert train.injected["product"]["model"] == str(root / "output/model.json")
    assert "upstream" not in p.tasks["get-users"].injected  # upstream = None: nothing to inject
    assert p.tasks["get-users"].parameters == ("n_users",)  # upstream and product are not run parameters
    assert "product" not in Project(root).parameter_defaults(p)


def test_executed_notebook_products_are_not_tasks(tmp_path):
    root = copy("ploomber-directory", tmp_path)
    write_notebook(root / "output" / "get-users.ipynb", [("upstream = None\nproduct = {'nb': 'x.ipynb'}", ["parameters"])])
    assert len(Project(root).compile().tasks) == 5


def test_compile_says_which_tasks_came_from_ploomber(tmp_path):
    root = copy("ploomber-yaml", tmp_path)
    out = subprocess.run([sys.executable, "-m", "nbflow", "compile", str(root)], capture_output=True, text=True, check=True)
    assert "from   Ploomber declarations (pipeline.yaml)" in out.stdout
    out = subprocess.run([sys.executable, "-m", "nbflow", "compile", str(root), "--json"], capture_output=True, text=True,
                         check=True)
    origin = {t["name"]: t["ploomber"] for t in json.loads(out.stdout)["tasks"]}
    assert origin == {"get": "pipeline.yaml", "clean": "pipeline.yaml", "profile": "pipeline.yaml",
                      "settings": "pipeline.yaml", "report": None}


def test_pipeline_yaml_with_env_and_placeholders(tmp_path):
    root = copy("ploomber-yaml", tmp_path)
    p = Project(root).compile()
    assert p.order == ("get", "clean", "profile", "settings", "report")
    get, clean, profile = p.tasks["get"], p.tasks["clean"], p.tasks["profile"]
    assert get.relpath == "scripts/get.py" and get.upstream == () and clean.upstream == ("get",)
    assert profile.relpath == "scripts/profile.ipynb" and profile.upstream == ("clean",)  # `name:` and an .ipynb source
    # {{root}} and {{path.products}} (nested, from env.yaml); products relative to the folder of pipeline.yaml
    assert get.injected["product"] == {"nb": str(root / "products/get.ipynb"), "data": str(root / "products/raw.csv")}
    assert get.injected["rows"] == 30 and "rows" not in get.parameters  # params: '{{rows}}' keeps env.yaml's type
    assert get.cwd == str(root) and get.folder == str(root)  # scripts run in the folder of pipeline.yaml, as in Ploomber
    assert clean.notebook_copies == (str(root / "products/clean.html"),)
    assert profile.notebook_copies == (str(root / "products/profile.ipynb"),)  # a one-path product is the notebook
    assert profile.injected["upstream"] == {"clean": {"nb": str(root / "products/clean.html"), "data": str(root / "products/clean.csv")}}
    # report.py mixes styles: nbflow tags reading Ploomber products
    assert p.tasks["report"].ploomber is None and p.tasks["report"].upstream == ("clean", "settings")


def test_a_changed_product_or_param_changes_the_cache_key(tmp_path):
    root = copy("ploomber-yaml", tmp_path)
    before = Project(root).compile().tasks["get"].code_hash
    (root / "env.yaml").write_text("rows: 31\npath:\n  products: products\n")
    assert Project(root).compile().tasks["get"].code_hash != before


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: (r / "scripts/clean.py").write_text((r / "scripts/clean.py").read_text().replace('["get"]', '["gett"]')),
     r"scripts/clean.py, cell 3 \(line 7\): upstream \['gett'\] names 'gett', which is no task. Fix: did you mean 'get'"),
    (lambda r: (r / "pipeline.yaml").write_text("tasks:\n  - source: tasks.get\n    product: out.parquet\n"),
     r"pipeline.yaml, task 'get': source 'tasks.get' is a Python function; nbflow runs notebooks and scripts"),
    (lambda r: (r / "pipeline.yaml").write_text("tasks:\n  - source: q.sql\n    product: [t, table]\n"),
     r"source 'q.sql' is an SQL file"),
    (lambda r: (r / "pipeline.yaml").write_text("tasks:\n  - source: scripts/get.py\n    product: '{{now}}/x.csv'\n"),
     r"placeholder '\{\{now\}\}' changes at every run"),
    (lambda r: (r / "pipeline.yaml").write_text("tasks:\n  - source: scripts/get.py\n    product: '{{missing}}/x.csv'\n"),
     r"placeholder '\{\{missing\}\}' has no value .* Fix: add `missing: ...` to env.yaml"),
    (lambda r: (r / "pipeline.yaml").write_text("tasks:\n  - source: scripts/get.py\n    product: x.csv\n    grid: {a: [1]}\n"),
     r"key 'grid' is not supported by nbflow"),
    (lambda r: (r / "pipeline.yaml").write_text("tasks:\n  - source: scripts/get.py\n"), r"has no `product:`"),
    (lambda r: (r / "pipeline.yaml").write_text("tasks:\n  - source: scripts/get.py\n    product: {nb: out/x.pdf}\n"),
     r"notebook product '.*x.pdf' is neither .ipynb nor .html"),
])
def test_ploomber_mistakes_are_clear_errors(tmp_path, edit, message):
    root = copy("ploomber-yaml", tmp_path)
    edit(root)
    with pytest.raises(NotebookError, match=message):
        Project(root).compile()


def test_product_none_outside_pipeline_yaml_is_an_error(tmp_path):
    root = copy("ploomber-directory", tmp_path)
    (root / "get-users.py").write_text((root / "get-users.py").read_text().replace(
        'product = {"nb": "output/get-users.ipynb", "data": "output/users.csv"}', "product = None"))
    with pytest.raises(NotebookError, match=r"get-users.py, cell 3 \(line 8\): declares `product = None` outside pipeline.yaml"):
        Project(root).compile()


def test_upstream_names_are_file_stems_looked_up_in_the_same_folder(tmp_path):
    (tmp_path / "etl").mkdir()
    (tmp_path / "etl" / "get.py").write_text("# %% tags=['parameters']\nupstream = None\nproduct = 'out/get.ipynb'\n")
    (tmp_path / "etl" / "clean.py").write_text("# %% tags=['parameters']\nupstream = ['get']\nproduct = 'out/clean.ipynb'\n")
    (tmp_path / "report.py").write_text("# %% tags=['parameters']\nupstream = ['etl/clean']\nproduct = 'out/report.ipynb'\n")
    p = Project(tmp_path).compile()
    assert p.order == ("etl/get", "etl/clean", "report")
    assert p.tasks["etl/clean"].injected["upstream"] == {"get": str(tmp_path / "etl/out/get.ipynb")}


def test_unknown_ploomber_upstream_lists_the_tasks(tmp_path):
    (tmp_path / "a.py").write_text("# %% tags=['parameters']\nupstream = ['zzz']\nproduct = 'out/a.ipynb'\n")
    with pytest.raises(UnknownUpstreamError, match=r"names 'zzz', which is no task. Fix: name a task by its file name"):
        Project(tmp_path).compile()
