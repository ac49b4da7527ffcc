"""Notebooks kept as text files (jupytext): which files are tasks, pairing, tags, cache keys and error lines. No kernel."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow import Project, textnb
from nbflow.errors import CycleError, NotebookError, TagError, UnknownUpstreamError

from .conftest import write_notebook

INGEST = '''# %% [markdown]
# Ingest the data.

# %% tags=["parameters"]
n = 3

# %% tags=["writes:data/x.csv"]
import os
os.makedirs("data", exist_ok=True)
open("data/x.csv", "w").write("a\\n" * n)
'''

CLEAN = '''# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["reads:data/x.csv"]
import helpers
rows = open("data/x.csv").read().split()

# %% tags=["check"]
assert len(rows) >= helpers.MIN_ROWS
'''

REPORT = '''---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Report

```{code-cell} ipython3
:tags: [upstream:clean]

print("report")
```
'''

LIGHT = '''# + tags=["parameters"]
k = 1
# -

print(k)
'''


def text_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ingest.py").write_text(INGEST)
    (root / "clean.py").write_text(CLEAN)
    (root / "report.md").write_text(REPORT)
    (root / "helpers.py").write_text('"""Imported by clean.py: a plain module, not a task."""\nMIN_ROWS = 1\n')
    (root / "README.md").write_text("# Notes\n\nNot a notebook.\n")
    (root / "setup.py").write_text("from setuptools import setup\n\nsetup()\n")
    return root


def test_which_text_files_are_notebooks():
    assert textnb.looks_like_notebook("a.py", INGEST)  # percent markers
    assert textnb.looks_like_notebook("a.py", CLEAN)  # a jupytext header
    assert textnb.looks_like_notebook("a.py", LIGHT)  # a light cell with tags
    assert textnb.looks_like_notebook("a.md", REPORT)  # MyST front matter
    assert textnb.looks_like_notebook("a.md", "```{code-cell} python\n1\n```\n")
    assert not textnb.looks_like_notebook("a.py", '"""A helper."""\nimport os\n\n\ndef f():\n    return "# %% not a marker"\n')
    assert not textnb.looks_like_notebook("a.md", "# Title\n\n```python\nprint(1)\n```\n")
    assert not textnb.looks_like_notebook("a.md", "---\ntitle: a blog post\n---\ntext\n")


def test_text_notebooks_are_tasks_and_plain_modules_are_not(tmp_path):
    p = Project(text_project(tmp_path)).compile()
    assert p.order == ("ingest", "clean", "report")
    ingest, clean, report = (p.tasks[n] for n in p.order)
    assert ingest.relpath == "ingest.py" and ingest.parameters == ("n",) and ingest.parameters_cell == 1
    assert ingest.writes == ("data/x.csv",) and ingest.cell_lines == (1, 4, 7)
    assert clean.reads == ("data/x.csv",) and clean.check_cells == (1,) and clean.upstream == ("ingest",)
    assert report.relpath == "report.md" and report.upstream == ("clean",) and report.cell_lines == (12, 14)
    assert clean.kernel == ingest.kernel == "python3"  # the header's kernelspec; python3 without one


def test_include_can_leave_text_notebooks_out(tmp_path):
    text_project(tmp_path)
    write_notebook(tmp_path / "only.ipynb", ["print(1)"])
    (tmp_path / "nbflow.toml").write_text('include = ["**/*.ipynb"]\n')
    assert Project(tmp_path).compile().order == ("only",)


def test_a_paired_notebook_is_one_task_read_from_its_text_file(tmp_path):
    text_project(tmp_path)
    nb = json.loads(json.dumps({"cells": [{"cell_type": "code", "source": "print('stale ipynb')", "metadata": {"tags": ["upstream:nope"]},
                                            "outputs": [], "execution_count": None}],
                                "metadata": {"jupytext": {"formats": "ipynb,py:percent"}}, "nbformat": 4, "nbformat_minor": 5}))
    (tmp_path / "clean.ipynb").write_text(json.dumps(nb))  # out of date: the text file is the source
    p = Project(tmp_path).compile()
    assert p.order == ("ingest", "clean", "report")
    assert p.tasks["clean"].path == str(tmp_path / "clean.py") and p.tasks["clean"].paired == str(tmp_path / "clean.ipynb")
    out = subprocess.run([sys.executable, "-m", "nbflow", "compile", str(tmp_path), "--json"], capture_output=True, text=True, check=True)
    assert {t["name"]: t["paired"] for t in json.loads(out.stdout)["tasks"]}["clean"] == "clean.ipynb"


def test_pairing_by_jupytext_formats_across_folders(tmp_path):
    """`formats: notebooks//ipynb,scripts//py:percent` pairs files in two folders: still one task, the text file."""
    (tmp_path / "scripts").mkdir()
    header = ('# ---\n# jupyter:\n#   jupytext:\n#     formats: notebooks//ipynb,scripts//py:percent\n'
              '#     text_representation:\n#       extension: .py\n#       format_name: percent\n# ---\n\n')
    (tmp_path / "scripts" / "a.py").write_text(header + "# %%\nprint(1)\n")
    write_notebook(tmp_path / "notebooks" / "a.ipynb", ["print(1)"])
    p = Project(tmp_path).compile()
    assert p.order == ("scripts/a",) and p.tasks["scripts/a"].paired == str(tmp_path / "notebooks" / "a.ipynb")


def test_cache_key_ignores_markdown_and_formatting_of_the_text(tmp_path):
    text_project(tmp_path)
    before = Project(tmp_path).compile().tasks["ingest"].code_hash
    (tmp_path / "ingest.py").write_text(INGEST.replace("# Ingest the data.", "# Ingest the data, reworded.\n#\n# More prose."))
    assert Project(tmp_path).compile().tasks["ingest"].code_hash == before
    (tmp_path / "ingest.py").write_text(INGEST.replace("n = 3", "n = 4"))
    assert Project(tmp_path).compile().tasks["ingest"].code_hash != before


def test_errors_name_the_line_of_the_text_file(tmp_path):
    text_project(tmp_path)
    (tmp_path / "clean.py").write_text(CLEAN.replace('tags=["check"]', 'tags=["retries:three"]'))
    with pytest.raises(TagError) as e:
        Project(tmp_path).compile()
    assert str(e.value).startswith("clean.py, cell 2 (line 18): tag 'retries:three'") and e.value.line == 18
    assert CLEAN.splitlines()[17] == '# %% tags=["check"]'
    (tmp_path / "clean.py").write_text(CLEAN)
    (tmp_path / "report.md").write_text(REPORT.replace("upstream:clean", "upstream:cleen"))
    with pytest.raises(UnknownUpstreamError, match=r"report.md, cell 2 \(line 14\): tag 'upstream:cleen' names no task. "
                                                   r"Fix: did you mean 'upstream:clean'"):
        Project(tmp_path).compile()
    (tmp_path / "report.md").write_text(REPORT)
    (tmp_path / "ingest.py").write_text(INGEST.replace('tags=["parameters"]', 'tags=["parameters", "upstream:report"]'))
    with pytest.raises(CycleError) as cycle:
        Project(tmp_path).compile()
    assert "ingest.py cell 2 (line 4) has upstream:report" in str(cycle.value)


def test_a_file_jupytext_cannot_read_is_a_clear_error(tmp_path):
    (tmp_path / "bad.py").write_text("# ---\n# jupyter:\n#   jupytext: [unclosed\n# ---\n\n# %%\n1\n")
    with pytest.raises(NotebookError, match=r"bad.py: jupytext cannot read it as a notebook .* Fix:"):
        Project(tmp_path).compile()


def test_cell_lines_for_each_format():
    nb = textnb.parse(LIGHT, "a.py", "a.py")
    assert textnb.cell_lines(LIGHT, nb["cells"]) == (1, 5)
    text = "x = 1\n\n# %%\n\n# %% [markdown]\n# Title\n\n# %%\ny = 2\n"
    nb = textnb.parse(text, "b.py", "b.py")
    assert [c["cell_type"] for c in nb["cells"]] == ["code", "code", "markdown", "code"]
    assert textnb.cell_lines(text, nb["cells"]) == (1, 3, 5, 8)
    assert textnb.format_name(text, "b.py") == "py:percent" and textnb.format_name(REPORT, "r.md") == "md:myst"


def _imported_by_compile(root: Path) -> list[str]:
    code = ("import sys; from nbflow import Project; Project(sys.argv[1]).compile(); print(sorted(m for m in ('papermill', "
            "'nbclient', 'jupyter_client', 'nbformat', 'jupytext', 'jsonschema', 'tornado', 'jupyter_server') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.strip().replace("'", '"')))


def test_compile_of_an_ipynb_project_imports_no_notebook_library(tmp_path):
    """Helpers and READMEs next to the notebooks are looked at as text, never with jupytext."""
    write_notebook(tmp_path / "a.ipynb", [("pass", ["writes:a.csv"])])
    (tmp_path / "helpers.py").write_text("X = 1\n")
    (tmp_path / "README.md").write_text("# notes\n")
    assert _imported_by_compile(tmp_path) == []


def test_compile_of_a_text_project_imports_jupytext_but_no_executor_or_server(tmp_path):
    assert _imported_by_compile(text_project(tmp_path)) == ["jsonschema", "jupytext", "nbformat"]
