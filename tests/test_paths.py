"""The one path rule (nbflow/paths.py): DAG edges, hashing, discovery and sensors agree; lineage finds any spelling."""
from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.engine import plan
from nbflow.paths import fill, list_files, matches, may_overlap, overlap_example, project_key, resolve, within
from nbflow.schedule.sensor import scan

from .conftest import write_notebook

DAY = "2026-01-02"


def _edge_and_shared(tmp_path: Path, writer: tuple[str, str, list[str]], reader: tuple[str, str]) -> tuple[bool, set[str], bool]:
    """Compile a writer and a reader notebook; the writer makes, with the run's parameters, a file the reader could
    read if there is one (else its usual files); hash the reader's inputs with the real plan functions.
    Returns (edge writer -> reader, the writer's files among the reader's hashed inputs, placeholders involved)."""
    out = tmp_path / "outside"
    root = tmp_path / "proj"
    (w_dir, w_tag, w_files), (r_dir, r_tag) = writer, reader
    w_tag, r_tag = w_tag.replace("OUT", str(out)), r_tag.replace("OUT", str(out))
    write_notebook(root / w_dir / "w.ipynb", [("day = ''", ["parameters"]), ("pass", [w_tag])])
    write_notebook(root / r_dir / "r.ipynb", [("day = ''", ["parameters"]), ("pass", [r_tag])])
    project = Project(root)
    pipeline = project.compile()
    w_name, r_name = os.path.join(w_dir, "w"), os.path.join(r_dir, "r")
    params = project.run_parameters({"day": DAY}, "matrix", None)
    [w_template], [r_template] = pipeline.tasks[w_name].writes, pipeline.tasks[r_name].reads
    example = overlap_example(resolve(w_template, params, str(root)), resolve(r_template, params, str(root)))
    made = [example] if example else [f.replace("OUT", str(out)).replace("DAY", DAY) for f in w_files]
    for f in made:
        full = Path(f) if Path(f).is_absolute() else root / f
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(f"made by {w_tag}")
    written, missing = plan.hash_writes(pipeline.tasks[w_name], params, str(root))
    assert not missing and sorted(p for p, _, _ in written) == sorted(made), (w_tag, written, made)
    hashed = {p for p, digest, _ in plan.hash_reads(pipeline.tasks[r_name], params, str(root)) if digest != "missing"}
    edge = (w_name, r_name) in {(e.upstream, e.downstream) for e in pipeline.edges}
    return edge, {p for p, _, _ in written} & hashed, "{" in w_template + r_template


# (notebook folder, tag, files the notebook makes: relative to the project, or under OUT, a folder outside it)
WRITERS = {
    "file": ("", "writes:data/x.csv", ["data/x.csv"]),
    "folder": ("", "writes:data/sub", ["data/sub/a.csv", "data/sub/deep/b.csv"]),
    "star": ("", "writes:data/*.csv", ["data/y.csv"]),
    "dstar": ("", "writes:data/**/z.csv", ["data/p/q/z.csv"]),
    "class": ("", "writes:data/[ab].txt", ["data/a.txt"]),
    "dotfile": ("", "writes:data/.hidden.csv", ["data/.hidden.csv"]),
    "param": ("", "writes:data/{day}/out.csv", ["data/DAY/out.csv"]),
    "param-name": ("", "writes:data/day-{day}.csv", ["data/day-DAY.csv"]),
    "dotdot": ("nb", "writes:../data/up.csv", ["data/up.csv"]),
    "absolute": ("", "writes:OUT/lake/x.parquet", ["OUT/lake/x.parquet"]),
    "dotdot-outside": ("nb", "writes:../../outside/rel.csv", ["OUT/rel.csv"]),
}
READERS = {
    "file": ("", "reads:data/x.csv"),
    "folder": ("", "reads:data"),
    "subfolder": ("", "reads:data/sub"),
    "star": ("", "reads:data/*.csv"),
    "star-deep": ("", "reads:data/*/*.csv"),
    "dstar-name": ("", "reads:data/**/x.csv"),
    "dstar-all": ("", "reads:data/**"),
    "dstar-csv": ("", "reads:**/*.csv"),
    "class": ("", "reads:data/[ab].txt"),
    "class-not": ("", "reads:data/[!a].txt"),
    "hidden": ("", "reads:data/.*"),
    "param-file": ("", "reads:data/{day}/out.csv"),
    "param-folder": ("", "reads:data/{day}"),
    "param-glob": ("", "reads:data/{day}/*.csv"),
    "param-name": ("", "reads:data/day-{day}.csv"),
    "dotdot": ("nb", "reads:../data/x.csv"),
    "dotdot-folder": ("nb", "reads:../data"),
    "absolute-folder": ("", "reads:OUT/lake"),
    "absolute-glob": ("", "reads:OUT/**/*.parquet"),
    "dotdot-outside": ("nb", "reads:../../outside/rel.csv"),
    "outside-star": ("", "reads:OUT/*.csv"),
}


@pytest.mark.parametrize("writer,reader", list(itertools.product(WRITERS, READERS)))
def test_matrix_edge_exists_iff_the_writers_files_are_hashed_by_the_reader(tmp_path, writer, reader):
    edge, shared, placeholders = _edge_and_shared(tmp_path, WRITERS[writer], READERS[reader])
    assert edge or not shared, f"{writer} -> {reader}: the reader hashes {shared} but runs without waiting for the writer"
    # An edge is decided before any parameter is known, where a placeholder may stand for any name: with this run's
    # values the two paths may not meet. Without placeholders, exactly: edge <=> a file of the writer is hashed.
    assert edge == bool(shared) or (placeholders and edge), f"{writer} -> {reader}: edge {edge}, shared {shared}"


def test_the_matrix_covers_both_outcomes_for_every_shape(tmp_path):
    """Guard against a matrix that passes by never making an edge (or always making one)."""
    edges = {(w, r): may_overlap(_key(WRITERS[w][1]), _key(READERS[r][1])) for w in WRITERS for r in READERS}
    for w in WRITERS:
        assert {edges[w, r] for r in READERS} == {True, False}, w
    for r in READERS:
        assert {edges[w, r] for w in WRITERS} == {True, False}, r


def _key(tag: str) -> str:
    """The project key of a matrix tag, for a project at /p with the outside folder at /outside."""
    folder = "/p/nb" if tag.split(":", 1)[1].startswith("../") else "/p"
    return project_key(tag.split(":", 1)[1].replace("OUT", "/outside"), folder, "/p")


# the three cases of the issue, through the compiler and the plan functions only

def _issue_case(tmp_path: Path, write: str, made: str, read: str) -> tuple[bool, list[str]]:
    """(edge writer -> reader, the reader's hashed inputs) once the writer has made `made`."""
    write_notebook(tmp_path / "w.ipynb", [("pass", [f"writes:{write}"])])
    write_notebook(tmp_path / "r.ipynb", [("pass", [f"reads:{read}"])])
    project = Project(tmp_path)
    pipeline = project.compile()
    (tmp_path / made).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / made).write_text("x")
    params = project.run_parameters({}, "issue", None)
    hashed = [p for p, digest, _ in plan.hash_reads(pipeline.tasks["r"], params, str(tmp_path)) if digest != "missing"]
    return ("w", "r") in {(e.upstream, e.downstream) for e in pipeline.edges}, hashed


def test_issue_a_folder_reader_gets_an_edge_from_a_file_writer(tmp_path):
    assert _issue_case(tmp_path, "data/x.csv", "data/x.csv", "data") == (True, ["data/x.csv"])


def test_issue_a_double_star_reader_gets_an_edge_from_a_file_writer(tmp_path):
    assert _issue_case(tmp_path, "data/x.csv", "data/x.csv", "data/**/x.csv") == (True, ["data/x.csv"])


def test_issue_a_star_does_not_cross_a_slash(tmp_path):
    assert _issue_case(tmp_path, "data/sub/x.csv", "data/sub/x.csv", "data/*.csv") == (False, [])


def test_a_static_input_beside_dated_outputs_makes_no_cycle(make_nb, tmp_path):
    """A placeholder is not taken to name a folder `data/config.csv`: the most common pipeline shape stays acyclic."""
    make_nb("ingest", [("pass", ["reads:data/config.csv", "writes:data/{run_date}/raw.csv"])])
    make_nb("clean", [("pass", ["reads:data/{run_date}/raw.csv", "writes:data/{run_date}/clean.csv"])])
    pipeline = Project(tmp_path).compile()
    assert [(e.upstream, e.downstream) for e in pipeline.edges] == [("ingest", "clean")]


def test_a_name_starting_with_two_dots_is_inside_the_project(make_nb, tmp_path):
    make_nb("a", [("pass", ["writes:..hidden.csv"])])
    assert Project(tmp_path).compile().tasks["a"].writes == ("..hidden.csv",)


# may_overlap: pure

@pytest.mark.parametrize("a,b,expected", [
    ("data/x.csv", "data/x.csv", True),
    ("data/x.csv", "data/y.csv", False),
    ("data/x.csv", "data", True),  # a plain path is a file, or every file under that folder
    ("data/x.csv", "dat", False),
    ("data/x.csv", ".", True),  # the project folder itself
    ("data/x.csv", "data/**/x.csv", True),  # ** is zero segments too
    ("data/a/b/x.csv", "data/**/x.csv", True),
    ("data/sub/x.csv", "data/*.csv", False),  # * stays within a segment
    ("data/sub/x.csv", "data/*/*.csv", True),
    ("data/sub", "data/*.csv", False),
    ("data/sub", "data/*/*.csv", True),  # a file under the folder matches
    ("data/a.txt", "data/[ab].txt", True),
    ("data/c.txt", "data/[ab].txt", False),
    ("data/[ab].txt", "data/[!a].txt", True),  # b
    ("data/[a].txt", "data/[!a].txt", False),
    ("data/[a-c]?.txt", "data/b[0-9].txt", True),
    ("data/.x.csv", "data/*", False),  # wildcards skip a leading dot, as glob does
    ("data/.x.csv", "data/*.csv", False),
    ("data/.x.csv", "data/.*", True),
    ("data/.h/x.csv", "data/**", False),
    ("data/.h/x.csv", "data", True),  # everything under a plain folder
    ("data/{day}/out.csv", "data/2026-01-01/out.csv", True),  # a placeholder is any one segment
    ("data/{day}/out.csv", "data/*/out.csv", True),
    ("data/{day}/out.csv", "data/{when}/out.csv", True),
    ("data/{day}/out.csv", "data/{day}", True),
    ("data/{day}/out.csv", "data/{day}/other.csv", False),
    ("data/{day}/out.csv", "data/x.csv", False),  # ... but never a literal folder name under a plain path
    ("data/{day}/out.csv", "data/config.csv", False),
    ("data/{name}.csv", "data/x.csv", True),
    ("data/{name}.csv", "data/x.txt", False),
    ("/lake/x.parquet", "/lake", True),
    ("/lake/x.parquet", "lake/x.parquet", False),  # absolute (outside the project) never meets relative
    ("a/**/b/**/c", "a/b/c", True),
    ("a/**/b", "a/*/*/*/b", True),
    ("**/x.csv", "*/y.csv", False),
    ("data/[z-a]", "data", False),  # an empty class names nothing
])
def test_may_overlap(a, b, expected):
    assert may_overlap(a, b) is expected and may_overlap(b, a) is expected
    example = overlap_example(a, b)
    if expected and "{" not in a + b:
        assert example is not None and matches(a, example) and matches(b, example)


def test_overlap_is_exact_against_brute_force():
    """Every pair of random globs: the example both match, and no common file missed (a small universe of paths)."""
    names = ["a", "b", ".h", "x.csv"]
    universe = ["/".join(p) for n in range(1, 5) for p in itertools.product(names, repeat=n)]
    segments = ["a", "b", ".h", "x.csv", "*", "?", "[ab]", "[!a]", "**", "*.csv", ".*", "a*", "*b"]
    rng = random.Random(7)
    for _ in range(400):
        a, b = ("/".join(rng.choice(segments) for _ in range(rng.randint(1, 3))) for _ in range(2))
        example = overlap_example(a, b)
        if example is not None:
            assert matches(a, example) and matches(b, example), (a, b, example)
        common = next((p for p in universe if matches(a, p) and matches(b, p)), None)
        assert common is None or example is not None, (a, b, common)


def test_listing_on_disk_is_the_same_grammar_as_matching(tmp_path):
    dirs = ["", "a", "b", ".h", "a/b", "a/.h", ".h/a", "b/a/b"]
    files = [f"{d}/{f}".lstrip("/") for d in dirs for f in ("x.csv", ".f", "a1")]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text(f)
    patterns = [".", "a", "a/b", "*", "*/x.csv", "**", "**/x.csv", "a/**", "**/.f", ".*/*", "[ab]/*", "[!a]*/**/a?",
                "a/*/x.csv", "a/**/b/*", ".h", "x.csv", "nothing", "a/x.csv/more"]
    for pattern in patterns:
        assert list_files(pattern, str(tmp_path)) == sorted(f for f in files if matches(pattern, f)), pattern


def test_listing_follows_symlinks_once_and_stops_on_a_loop(tmp_path):
    (tmp_path / "data" / "real").mkdir(parents=True)
    (tmp_path / "data" / "real" / "x.csv").write_text("1")
    (tmp_path / "data" / "real" / "loop").symlink_to(tmp_path / "data")
    assert "data/real/x.csv" in list_files("data/**", str(tmp_path))
    assert list_files("data", str(tmp_path))[0] == "data/real/x.csv"


def test_discovery_uses_the_same_rule(make_nb, tmp_path):
    for name in ("a", "scratch/b", "sub/c", "sub/.d"):
        make_nb(name, ["pass"])
    (tmp_path / "nbflow.toml").write_text('exclude = ["scratch"]\n')  # a plain path: the folder and all under it
    assert sorted(Project(tmp_path).compile().tasks) == ["a", "sub/c"]


def test_sensors_use_the_same_rule(tmp_path):
    for f in ("incoming/a.csv", "incoming/.a.csv.part", "incoming/.b.csv", "incoming/sub/c.csv", "incoming/d.txt"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("x")
    assert [p for p, _, _ in scan(str(tmp_path), "incoming/*.csv")] == ["incoming/a.csv"]
    assert [p for p, _, _ in scan(str(tmp_path), "incoming/**/*.csv")] == ["incoming/a.csv", "incoming/sub/c.csv"]
    assert len(scan(str(tmp_path), "incoming")) == 5  # a plain folder: every file under it


def test_spelling_normalisation():
    assert project_key("../shared/x.csv", "/p/a", "/p") == "shared/x.csv"
    assert project_key("../../shared/y.csv", "/p/a", "/p") == "/shared/y.csv"
    assert project_key("/p/data/./x.csv", "/p/a", "/p") == "data/x.csv"
    assert project_key("data/{run_date}/*.csv", "/p/nb", "/p") == "nb/data/{run_date}/*.csv"
    assert project_key("..x", "/p", "/p") == "..x"
    assert project_key("~/x.csv", "/p", "/p") == os.path.expanduser("~/x.csv")
    assert fill("data/{d}/{n}.csv", {"d": "2026", "n": 1}) == "data/2026/1.csv"
    assert fill("nb/{input_path}", {"input_path": "/p/incoming/a.csv"}) == "/p/incoming/a.csv"  # as os.path.join
    assert resolve("nb/{input_path}", {"input_path": "/p/incoming/a.csv"}, "/p") == "incoming/a.csv"


def test_containment_is_resolved_never_a_string_prefix(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data-secret").mkdir()
    (tmp_path / "data" / "link").symlink_to(tmp_path / "data-secret")
    assert within(str(tmp_path / "data"), "x/../y") == (tmp_path / "data" / "y").resolve()
    assert within(str(tmp_path / "data"), "../data-secret") is None
    assert within(str(tmp_path / "data"), "link/z") is None


# bug 8: lineage by any spelling of a path outside the project

@pytest.mark.kernel
def test_lineage_finds_paths_outside_the_project_by_any_spelling(tmp_path):
    root, shared, lake = tmp_path / "proj", tmp_path / "shared", tmp_path / "lake"
    shared.mkdir()
    (shared / "y.csv").write_text("1,2,3\n")
    write_notebook(root / "nb" / "make.ipynb", [
        ("data = open('../../shared/y.csv').read()", ["reads:../../shared/y.csv"]),
        (f"import os; os.makedirs({str(lake)!r}, exist_ok=True); open({str(lake / 'x.parquet')!r}, 'w').write(data)",
         [f"writes:{lake}/x.parquet"]),
    ])
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)

    def nbflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nbflow", *args], check=False, cwd=cwd, capture_output=True,
                              text=True, timeout=240, env={**os.environ, "COLUMNS": "1000"})

    ran = nbflow("run", cwd=root)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    spellings = [
        (str(lake / "x.parquet"), elsewhere),  # absolute
        ("lake//x.parquet", tmp_path),  # relative to the current folder
        ("../lake/./x.parquet", elsewhere),  # relative to the project (-C), not to the current folder
        ("../../shared/y.csv", root / "nb"),  # as the tag spells it, from the notebook's folder
    ]
    for spelling, cwd in spellings:
        out = nbflow("lineage", spelling, "-C", str(root), "--json", cwd=cwd)
        assert out.returncode == 0, (spelling, out.stderr)
        tree = json.loads(out.stdout)["path"]
        if spelling.endswith("y.csv"):
            assert tree["path"] == str(shared / "y.csv") and tree["producer"] is None
        else:
            assert tree["path"] == str(lake / "x.parquet") and tree["producer"]["task"] == "nb/make"
            assert [i["path"] for i in tree["inputs"]] == [str(shared / "y.csv")]
    missing = nbflow("lineage", "../lake/nothing.parquet", "-C", str(root), cwd=elsewhere)
    assert missing.returncode == 2 and "no task has recorded" in missing.stderr and str(lake / "nothing.parquet") in missing.stderr
