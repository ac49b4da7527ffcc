"""Pure tests of notebook reading, DAG building and validation (no kernel)."""
from __future__ import annotations

import json

import pytest

from nbflow import Project
from nbflow.config import load_config
from nbflow.dag import build, select
from nbflow.errors import (
    ConfigError,
    CycleError,
    DuplicateWriterError,
    NotebookError,
    SelectionError,
    TagError,
    UnknownUpstreamError,
)
from nbflow.notebook import normalized_code, read_task


def compile_dir(path):
    return Project(path).compile()


def test_paths_infer_edges_and_order(make_nb, tmp_path):
    make_nb("ingest", [("x = 1", ["parameters"]), ("open('data/raw.csv','w')", ["writes:data/raw.csv"])])
    make_nb("clean", [("open('data/raw.csv')", ["reads:data/raw.csv", "writes:data/clean.csv"])])
    make_nb("report", [("pass", ["reads:data/*.csv"])])
    make_nb("etl/extra", [("pass", ["upstream:ingest"])])
    p = compile_dir(tmp_path)
    assert p.order == ("ingest", "clean", "etl/extra", "report")
    assert p.tasks["clean"].upstream == ("ingest",)
    assert p.tasks["report"].upstream == ("clean", "ingest")  # glob read matches both writers
    assert p.tasks["etl/extra"].upstream == ("ingest",)
    reasons = {(e.upstream, e.downstream): e.reason for e in p.edges}
    assert reasons[("ingest", "clean")] == "path data/raw.csv"
    assert reasons[("ingest", "etl/extra")] == "upstream tag"


def test_paths_are_relative_to_the_notebook_folder(make_nb, tmp_path):
    make_nb("a/produce", [("pass", ["writes:../shared/x.csv"])])
    make_nb("b/consume", [("pass", ["reads:../shared/x.csv"])])
    p = compile_dir(tmp_path)
    assert p.tasks["a/produce"].writes == ("shared/x.csv",)
    assert p.tasks["b/consume"].upstream == ("a/produce",)


def test_unknown_upstream_suggests_close_names(make_nb, tmp_path):
    make_nb("ingest", ["pass"])
    make_nb("clean", ["#md notes", ("pass", ["upstream:ingst"])])
    with pytest.raises(UnknownUpstreamError) as err:
        compile_dir(tmp_path)
    msg = str(err.value)
    assert "clean.ipynb, cell 2" in msg and "upstream:ingst" in msg and "did you mean 'upstream:ingest'" in msg


def test_cycle_prints_path(make_nb, tmp_path):
    make_nb("a", [("pass", ["upstream:c"])])
    make_nb("b", [("pass", ["upstream:a"])])
    make_nb("c", [("pass", ["upstream:b"])])
    make_nb("d", ["pass"])
    with pytest.raises(CycleError) as err:
        compile_dir(tmp_path)
    assert err.value.cycle in (["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])
    assert " -> " in str(err.value) and "a.ipynb cell 1 has upstream:c" in str(err.value)
    assert "b.ipynb cell 1 has upstream:a" in str(err.value) and "Fix:" in str(err.value)


def test_cycle_through_paths(make_nb, tmp_path):
    make_nb("a", [("pass", ["reads:y.csv", "writes:x.csv"])])
    make_nb("b", ["#md", ("pass", ["reads:x.csv", "writes:y.csv"])])
    with pytest.raises(CycleError) as err:
        compile_dir(tmp_path)
    assert "b.ipynb cell 2 has reads:x.csv (written by a)" in str(err.value)
    assert "a.ipynb cell 1 has reads:y.csv (written by b)" in str(err.value)


def test_two_writers_of_one_path(make_nb, tmp_path):
    make_nb("a", [("pass", ["writes:out.csv"])])
    make_nb("b", ["x = 1", ("pass", ["writes:out.csv"])])
    with pytest.raises(DuplicateWriterError) as err:
        compile_dir(tmp_path)
    assert str(err.value).startswith("b.ipynb, cell 2: writes 'out.csv', which a.ipynb writes too (cell 1). Fix: ")


def test_malformed_json_names_file_and_line(tmp_path):
    (tmp_path / "broken.ipynb").write_text('{"cells": [,]}')
    with pytest.raises(NotebookError) as err:
        compile_dir(tmp_path)
    assert "broken.ipynb" in str(err.value) and "line 1" in str(err.value) and "Fix:" in str(err.value)


def test_not_a_notebook(tmp_path):
    (tmp_path / "odd.ipynb").write_text('{"worksheets": []}')
    with pytest.raises(NotebookError, match="odd.ipynb: has no 'cells' list"):
        compile_dir(tmp_path)


def test_bad_tag_is_reported_with_cell(make_nb, tmp_path):
    make_nb("a", ["pass", "pass", ("pass", ["retries:many"])])
    with pytest.raises(TagError, match=r"a.ipynb, cell 3: tag 'retries:many'"):
        compile_dir(tmp_path)


def test_two_parameters_cells(make_nb, tmp_path):
    make_nb("a", [("x = 1", ["parameters"]), ("y = 2", ["parameters"])])
    with pytest.raises(TagError, match="cell 2: a second 'parameters' cell \\(the first is cell 1\\)"):
        compile_dir(tmp_path)


def test_untagged_readme_notebook_and_checkpoints_do_not_break_discovery(make_nb, tmp_path):
    make_nb("README", ["#md # Read me"])
    make_nb(".ipynb_checkpoints/a-checkpoint", [("pass", ["upstream:nope"])])
    make_nb("a", ["pass"])
    p = compile_dir(tmp_path)
    assert set(p.tasks) == {"README", "a"}


def test_include_exclude_and_notebooks_folder(make_nb, tmp_path):
    make_nb("nbs/a", ["pass"])
    make_nb("nbs/scratch/b", ["pass"])
    make_nb("nbs/README", ["#md hi"])
    (tmp_path / "nbflow.toml").write_text('notebooks = "nbs"\nexclude = ["scratch/**", "README.ipynb"]\n')
    p = compile_dir(tmp_path)
    assert list(p.tasks) == ["a"]


def test_parameters_and_policies(make_nb, tmp_path):
    make_nb("a", [("x = 1\ny: int = 2\nz, w = 3, 4\nwhen = date.today()\nv: str", ["parameters"]),
                  ("pass", ["retries:5", "timeout:30"])])
    make_nb("b", ["pass"], kernel="ir")
    (tmp_path / "nbflow.toml").write_text('[defaults]\nretries = 1\ntimeout = 100\n'
                                          '[tasks.b]\nkernel = "python3"\npool = "db"\n[pools]\ndb = 1\n')
    p = compile_dir(tmp_path)
    a, b = p.tasks["a"], p.tasks["b"]
    assert a.parameters == ("x", "y", "when", "v")
    assert a.parameter_defaults == {"x": 1, "y": 2, "when": "date.today()"}  # literals, else the source text
    assert (a.policy.retries, a.policy.timeout) == (5, 30.0)
    assert (b.policy.retries, b.policy.timeout, b.policy.pool, b.kernel) == (1, 100, "db", "python3")


@pytest.mark.parametrize("toml,field", [
    ("jobs = 0", "jobs"),
    ("jobs = 'two'", "jobs"),
    ("colour = 1", "colour"),
    ("[defaults]\nretries = -1", "defaults.retries"),
    ("[defaults]\nretrys = 1", "defaults.retrys"),
    ("notebooks = 'nope'", "notebooks"),
    ("[pools]\ndb = 0", "pools.db"),
])
def test_config_errors_name_the_field(tmp_path, toml, field):
    (tmp_path / "nbflow.toml").write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(str(tmp_path))
    assert f"field '{field}'" in str(err.value) and "nbflow.toml" in str(err.value)


def test_pyproject_tool_table(tmp_path, make_nb):
    make_nb("nbs/a", ["pass"])
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.nbflow]\nnotebooks = "nbs"\njobs = 3\n')
    cfg = load_config(str(tmp_path))
    assert cfg.jobs == 3 and cfg.notebooks == str(tmp_path / "nbs") and cfg.source.endswith("pyproject.toml")


def test_code_hash_ignores_outputs_metadata_markdown_and_trailing_space(make_nb, tmp_path):
    path = make_nb("a", ["#md intro", ("x = 1", ["parameters"]), "print(x)"])
    cfg = load_config(str(tmp_path))
    before = read_task(str(path), cfg).code_hash
    nb = json.loads(path.read_text())
    nb["cells"][0]["source"] = "different prose"
    nb["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    nb["cells"][2]["execution_count"] = 7
    nb["cells"][2]["source"] = "print(x)   \n\n"
    nb["metadata"]["widgets"] = {"x": 1}
    path.write_text(json.dumps(nb))
    assert read_task(str(path), cfg).code_hash == before
    nb["cells"][2]["source"] = "print(x + 1)"
    path.write_text(json.dumps(nb))
    assert read_task(str(path), cfg).code_hash != before


def test_normalized_code_skips_markdown():
    cells = [{"cell_type": "markdown", "source": "# t"}, {"cell_type": "code", "source": ["a = 1  \n", "\n"]}]
    assert normalized_code(cells) == "a = 1"


def test_selection(make_nb, tmp_path):
    make_nb("a", [("pass", ["writes:a.csv"])])
    make_nb("b", [("pass", ["reads:a.csv", "writes:b.csv"])])
    make_nb("c", [("pass", ["reads:b.csv"])])
    make_nb("d", ["pass"])
    p = compile_dir(tmp_path)
    assert select(p, only=["b"]) == ["b"]
    assert select(p, only=["a,c"]) == ["a", "c"]
    assert select(p, start=["b"]) == ["b", "c"]
    assert select(p, end=["b"]) == ["a", "b"]
    assert select(p, start=["a"], end=["b"]) == ["a", "b"]
    assert select(p) == ["a", "b", "c", "d"]
    with pytest.raises(SelectionError, match="--only bb: no such task. Fix: did you mean b"):
        select(p, only=["bb"])


def test_compile_is_pure_and_light(make_nb, tmp_path):
    """Compiling must not import the executor stack (papermill, nbformat's validator)."""
    import subprocess
    import sys

    make_nb("a", [("pass", ["writes:a.csv"])])
    code = ("import sys; from nbflow import Project; Project(sys.argv[1]).compile(); "
            "print(sorted(m for m in ('papermill', 'nbclient', 'jsonschema', 'nbformat') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_build_is_deterministic(make_nb, tmp_path):
    for n in "edcba":
        make_nb(n, ["pass"])
    assert compile_dir(tmp_path).order == ("a", "b", "c", "d", "e")
    assert build(str(tmp_path), []).order == ()
