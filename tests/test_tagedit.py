"""Editing a cell's tags on disk: the file is byte for byte what it was but for those tags; refused edits write nothing."""
from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

import pytest

from nbflow import Project, tagedit
from nbflow.errors import ConflictError, CycleRefusedError, NbflowError, NotFoundError, TagError

from .conftest import REPO
from .test_textnb import CLEAN, INGEST, LIGHT, REPORT, text_project

EXAMPLES = sorted((REPO / "notebooks").glob("*.ipynb"))


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_notebooks_change_only_in_their_tags(path: Path):
    text = path.read_text(encoding="utf-8")
    cells = json.loads(text)["cells"]
    for index in (0, len(cells) // 2, len(cells) - 1):
        edited = tagedit.edit(str(path), text, path.name, index, ["upstream:extra", "retries:2"], [])
        before, after = json.loads(text), json.loads(edited)
        old_tags = before["cells"][index].get("metadata", {}).get("tags", [])
        assert after["cells"][index]["metadata"]["tags"] == [*old_tags, "upstream:extra", "retries:2"]
        after["cells"][index]["metadata"]["tags"] = old_tags
        if not old_tags:
            del after["cells"][index]["metadata"]["tags"]
        assert after == before  # nothing else changed in the notebook...
        assert all('"upstream:extra"' in line or '"retries:2"' in line or line.strip(" +-,") in
                   (f'"{t}"' for t in old_tags) or line.strip(" +-") in ('"tags": [', "],", "]", "}", "},", '"metadata": {},',
                                                                     '"metadata": {', "{", '"tags": []')
                   for line in changed_lines(text, edited)), changed_lines(text, edited)  # ...nor in the file's text
        assert tagedit.edit(str(path), edited, path.name, index, [], ["upstream:extra", "retries:2"]) == text  # byte for byte


def test_a_percent_text_notebook_changes_only_on_the_marker_line(tmp_path):
    path = tmp_path / "clean.py"
    edited = tagedit.edit(str(path), CLEAN, "clean.py", 1, ["upstream:ingest"], ["check"])
    assert changed_lines(CLEAN, edited) == ['-# %% tags=["check"]', '+# %% tags=["upstream:ingest"]']
    edited = tagedit.edit(str(path), INGEST, "ingest.py", 0, ["upstream:x"], [])  # a markdown cell
    assert changed_lines(INGEST, edited) == ["-# %% [markdown]", '+# %% [markdown] tags=["upstream:x"]']
    back = tagedit.edit(str(path), edited, "ingest.py", 0, [], ["upstream:x"])
    assert back == INGEST


def test_light_and_myst_markers(tmp_path):
    edited = tagedit.edit(str(tmp_path / "l.py"), LIGHT, "l.py", 0, ["upstream:a"], [])
    assert changed_lines(LIGHT, edited) == ['-# + tags=["parameters"]', '+# + tags=["parameters", "upstream:a"]']
    with pytest.raises(ConflictError, match=r"l.py, cell 1: the cell has no marker line"):
        tagedit.edit(str(tmp_path / "l.py"), LIGHT, "l.py", 1, ["upstream:a"], [])
    edited = tagedit.edit(str(tmp_path / "r.md"), REPORT, "r.md", 1, ["retries:1"], [])
    assert changed_lines(REPORT, edited) == ["-:tags: [upstream:clean]", '+:tags: ["upstream:clean", "retries:1"]']
    bare = REPORT.replace(":tags: [upstream:clean]\n\n", "")
    edited = tagedit.edit(str(tmp_path / "r.md"), bare, "r.md", 1, ["retries:1"], [])
    assert changed_lines(bare, edited) == ['+:tags: ["retries:1"]']


def test_json_written_by_other_tools_keeps_its_layout(tmp_path):
    nb = json.loads(EXAMPLES[0].read_text())
    for layout in ({"indent": 2}, {"indent": 4, "sort_keys": True}):
        text = json.dumps(nb, **layout) + "\n"
        edited = tagedit.edit("x.ipynb", text, "x.ipynb", 0, ["upstream:a"], [])
        assert tagedit.edit("x.ipynb", edited, "x.ipynb", 0, [], ["upstream:a"]) == text
    with pytest.raises(ConflictError, match="laid out in a way nbflow cannot reproduce"):
        tagedit.edit("x.ipynb", json.dumps(nb, indent=3), "x.ipynb", 0, ["upstream:a"], [])


def test_no_such_cell(tmp_path):
    with pytest.raises(Exception, match=r"has no cell 9 \(it has 3 cells"):
        tagedit.edit(str(tmp_path / "i.py"), INGEST, "i.py", 9, ["upstream:a"], [])


@pytest.fixture
def examples(example_project: Path) -> Project:
    return Project(example_project)


def test_project_edit_tags_adds_an_edge(examples: Project):
    report = Path(examples.root) / "notebooks" / "report.ipynb"
    pipeline = examples.edit_tags("notebooks/report.ipynb", 0, ["upstream:ingest"])
    assert "ingest" in pipeline.tasks["report"].upstream
    assert "upstream:ingest" in json.loads(report.read_text())["cells"][0]["metadata"]["tags"]
    assert "ingest" in examples.compile().tasks["report"].upstream
    examples.edit_tags(str(report), 0, remove=["upstream:ingest"])  # undo: an absolute path works too
    assert report.read_bytes() == (REPO / "notebooks" / "report.ipynb").read_bytes()


def test_project_refuses_a_cycle_and_writes_nothing(examples: Project):
    ingest = Path(examples.root) / "notebooks" / "ingest.ipynb"
    before = ingest.read_bytes()
    with pytest.raises(CycleRefusedError) as refused:
        examples.edit_tags("notebooks/ingest.ipynb", 1, ["upstream:report"])
    assert refused.value.cycle[0] == refused.value.cycle[-1] and set(refused.value.cycle) >= {"ingest", "report"}
    assert "the change was not written: it would make a dependency cycle: " in str(refused.value)
    assert ingest.read_bytes() == before
    with pytest.raises(TagError, match="retries must be a whole number"):
        examples.edit_tags("notebooks/ingest.ipynb", 1, ["retries:many"])
    with pytest.raises(Exception, match=r"the change was not written: .*'upstream:nosuch' names no task"):
        examples.edit_tags("notebooks/ingest.ipynb", 1, ["upstream:nosuch"])
    assert ingest.read_bytes() == before
    with pytest.raises(NotFoundError, match="is not a task of the project"):
        examples.edit_tags("notebooks/README.md", 0, ["upstream:ingest"])


def test_project_edits_a_text_notebook_and_refuses_its_paired_ipynb(tmp_path):
    root = text_project(tmp_path)
    shutil.copy(REPO / "notebooks" / "clean.ipynb", root / "clean.ipynb")  # paired by name with clean.py
    project = Project(root)
    pipeline = project.edit_tags("ingest.py", 2, ["retries:2"])
    assert pipeline.tasks["ingest"].policy.retries == 2
    assert changed_lines(INGEST, (root / "ingest.py").read_text()) == [
        '-# %% tags=["writes:data/x.csv"]', '+# %% tags=["writes:data/x.csv", "retries:2"]']
    with pytest.raises(ConflictError, match=r"clean.ipynb is paired with clean.py, the file nbflow reads"):
        project.edit_tags("clean.ipynb", 0, ["retries:1"])


def test_notebook_info_for_the_sidebar(examples: Project):
    info = examples.notebook_info("notebooks/features.ipynb")
    assert info.task == "features" and info.format == "ipynb" and info.ploomber is None
    assert info.upstream == ("clean", "ingest") and info.downstream == ("train",)
    assert info.parameters_cell == 1 and ("data/{run_date}/clean_sales.csv", 3) in info.reads
    assert ("ingest", 2) in info.upstream_cells
    assert "upstream:ingest" in info.cell_tags[2]
    assert info.tasks == ("ingest", "clean", "features", "train", "report")
    assert "data/{run_date}/model.json" in info.written and "data/{run_date}/features.csv" not in info.written


def test_edit_dependency_chooses_the_cell_and_undoes_exactly(examples: Project):
    root = Path(examples.root) / "notebooks"
    before = {p.name: p.read_bytes() for p in root.glob("*.ipynb")}
    # features has an upstream: tag in cell 2: a new one joins it
    pipeline, edits = examples.edit_dependency("features", "clean")
    assert [(e.cell, e.add, e.remove) for e in edits] == [(2, ("upstream:clean",), ())]
    assert json.loads((root / "features.ipynb").read_text())["cells"][2]["metadata"]["tags"] == ["upstream:ingest", "upstream:clean"]
    assert "upstream tag" in {e.reason for e in pipeline.edges if (e.upstream, e.downstream) == ("clean", "features")}
    assert examples.edit_dependency("features", "clean")[1] == ()  # already there: nothing written
    # report has none: the parameters cell (1) gets it
    _, edits = examples.edit_dependency("report", "ingest")
    assert [(e.cell, e.add) for e in edits] == [(1, ("upstream:ingest",))]
    assert json.loads((root / "report.ipynb").read_text())["cells"][1]["metadata"]["tags"] == ["parameters", "upstream:ingest"]
    # removing takes it off the cell that has it; the inverse of each edit puts the files back byte for byte
    _, removed = examples.edit_dependency("features", "ingest", remove=True)
    assert [(e.cell, e.remove) for e in removed] == [(2, ("upstream:ingest",))]
    for e in removed + edits:
        examples.edit_tags(e.path, e.cell, e.remove, e.add)
    examples.edit_dependency("features", "clean", remove=True)
    assert {p.name: p.read_bytes() for p in root.glob("*.ipynb")} == before


def test_edit_dependency_refuses_a_cycle_and_a_path_edge(examples: Project):
    ingest = Path(examples.root) / "notebooks" / "ingest.ipynb"
    before = ingest.read_bytes()
    with pytest.raises(CycleRefusedError) as refused:
        examples.edit_dependency("ingest", "report")
    assert refused.value.cycle[0] == refused.value.cycle[-1] and {"ingest", "report"} <= set(refused.value.cycle)
    assert ingest.read_bytes() == before
    with pytest.raises(NbflowError, match="comes from a path it reads"):
        examples.edit_dependency("clean", "ingest", remove=True)
    with pytest.raises(NotFoundError, match="nosuch is not a task"):
        examples.edit_dependency("nosuch", "ingest")
