"""Several projects in one store file (a team's central history): each sees only its own runs, lineage, cache and
schedules; a name belongs to one folder; and a store written by the schema-v2 release migrates and is split."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.errors import ConflictError
from nbflow.store import migrations

from .conftest import write_notebook

STORES = Path(__file__).parent / "stores"


def _project(folder: Path, store: Path, name: str | None = None, value: int = 1) -> Path:
    write_notebook(folder / "make.ipynb", [(f"v = {value}", ["parameters"]),
                                           ("import os\nos.makedirs('data', exist_ok=True)\nopen('data/out.csv', 'w').write(str(v))",
                                            ["writes:data/out.csv"])])
    (folder / "nbflow.toml").write_text(f'store = "{store}"\n' + (f'name = "{name}"\n' if name else ""))
    return folder


@pytest.mark.kernel
def test_two_projects_in_one_store_see_only_their_own(tmp_path: Path) -> None:
    store = tmp_path / "central" / "nbflow.db"
    a, b = _project(tmp_path / "alpha", store), _project(tmp_path / "beta", store)
    with Project(a) as pa, Project(b) as pb:
        first = pa.run()
        assert first.ok
        # the same notebook in another project is not "up to date" because alpha ran it: its own cache
        second = pb.run()
        assert [t.status for t in second.tasks] == ["succeeded"]
        assert [r.id for r in pa.runs()] == [first.run_id] and [r.id for r in pb.runs()] == [second.run_id]
        assert {r.project for r in pa.runs(all_projects=True)} == {"alpha", "beta"}
        assert pa.lineage("data/out.csv")["path"]["producer"]["run_id"] == first.run_id
        assert pb.lineage("data/out.csv")["path"]["producer"]["run_id"] == second.run_id
        assert pa.pipeline_state().run is not None and pa.pipeline_state().run.id == first.run_id
        assert pa.run().tasks[0].status == "skipped"  # and alpha's own cache still holds
    out = subprocess.run([sys.executable, "-m", "nbflow", "runs", "--all-projects", "-C", str(a)], check=True,
                         capture_output=True, text=True, timeout=60)
    assert "alpha" in out.stdout and "beta" in out.stdout and second.run_id in out.stdout


def test_one_name_belongs_to_one_folder(tmp_path: Path) -> None:
    store = tmp_path / "central" / "nbflow.db"
    first = _project(tmp_path / "one" / "etl", store)
    other = _project(tmp_path / "two" / "etl", store)  # a different folder with the same (default) name
    with Project(first) as p:
        p.add_schedule("nightly", "0 2 * * *")  # a first write registers the name
    with pytest.raises(ConflictError) as info:
        Project(other).runs()
    message = str(info.value)
    assert "'etl'" in message and str(first) in message and str(other) in message and 'name = "' in message
    _project(other, store, name="etl-two")  # the fix the message gives
    with Project(other) as p:
        assert p.runs() == [] and p.name == "etl-two"


def test_a_moved_project_keeps_its_name(tmp_path: Path) -> None:
    store = tmp_path / "nbflow.db"
    old = _project(tmp_path / "old" / "sales", store)
    with Project(old) as p:
        p.add_schedule("nightly", "0 2 * * *")
    moved = tmp_path / "new" / "sales"
    shutil.move(str(old), str(moved))
    with Project(moved) as p:  # the old folder is gone: the name follows the project
        assert [s["name"] for s in p.schedules()] == ["nightly"]
        p.add_schedule("hourly", "0 * * * *")
        assert p.projects()[0]["root"] == str(moved)


def test_a_v2_store_of_two_projects_migrates_and_splits(tmp_path: Path) -> None:
    """tests/stores/v2_two_projects.db was written by the v2 release (see make_v2_store.py): alpha and beta both
    wrote data/out.csv, which v2 kept as one dataset, and each showed the other's runs."""
    store = tmp_path / "shared.db"
    shutil.copy(STORES / "v2_two_projects.db", store)
    made_in = json.loads((STORES / "v2_two_projects.json").read_text())["made_in"]
    alpha = _project(tmp_path / "alpha", store)
    beta = _project(tmp_path / "beta", store)
    with Project(alpha) as pa, Project(beta) as pb:
        assert pa.store.schema_version == len(migrations.MIGRATIONS)
        [ra], [rb] = pa.runs(), pb.runs()
        assert (ra.project, rb.project) == ("alpha", "beta") and ra.id != rb.id and ra.status == "succeeded"
        assert pa.lineage("data/out.csv")["path"]["producer"]["run_id"] == ra.id  # each its own version of the file
        assert pb.lineage("data/out.csv")["path"]["producer"]["run_id"] == rb.id
        shared = pb.lineage(f"{made_in}/shared-alpha.csv")["path"]  # a path outside both projects stays shared
        assert shared["producer"]["run_id"] == ra.id
        assert [s["name"] for s in pa.schedules()] == ["nightly"]  # v2 schedules go to the first project to open it
        assert pb.schedules() == [] and pa.slots()[0]["status"] == "skipped"
        assert {p["name"] for p in pa.projects()} == {"alpha", "beta"}
        # the moved projects (the folders v2 recorded are gone) take their names; new runs go on
        assert pa.run(force=True).ok and len(pa.runs()) == 2 and len(pb.runs()) == 1
