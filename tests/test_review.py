"""Reviewing runs (issue 15): diff, the HTML report and provenance on the example pipeline, and the rough edges a new
user hit, each with its test. Real kernels, papermill, SQLite, git and the CLI as a subprocess."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.cells import cell_label, with_cell
from nbflow.console import RunReporter
from nbflow.engine import plan
from nbflow.errors import NbflowError
from nbflow.schedule import cron
from nbflow.server import views

from .conftest import FIXTURES, REPO, wait_for, write_notebook
from .test_cli import nbflow

GIT = shutil.which("git")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(root)}).stdout


def commit_all(root: Path) -> str:
    if not (root / ".git").exists():
        git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "snapshot")
    return git(root, "rev-parse", "HEAD").strip()


# the example pipeline, run twice with different parameters: diff, report, provenance

@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, str]:
    """The example pipeline in a git repository, run with sample_size 2000 then 1500 and seed 11."""
    if GIT is None:
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("example")
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("data", ".ipynb_checkpoints"))
    (root / "nbflow.toml").write_text('notebooks = "notebooks"\njobs = 2\n[parameters]\nsample_size = 2000\n')
    (root / ".gitignore").write_text("nbflow-runs/\n.nbflow/\nnotebooks/data/\n")
    head = commit_all(root)
    with Project(root) as project:
        first = project.run({"run_date": "2026-03-01"})
        second = project.run({"run_date": "2026-03-01", "sample_size": 1500, "seed": 11})
    assert first.ok and second.ok, (first, second)
    return root, first.run_id, second.run_id, head


@pytest.mark.kernel
def test_diff_of_two_runs_of_the_example_pipeline(two_runs):
    root, a, b, _ = two_runs
    with Project(root) as project:
        found = project.diff(a[-6:], b[:17])  # a suffix and a prefix of the run ids
    assert (found["a"]["id"], found["b"]["id"]) == (a, b)
    params = {p["name"]: (p["a"], p["b"]) for p in found["parameters"]}
    assert params == {"sample_size": (2000, 1500), "seed": (None, 11)}  # run_id differs every run: never shown
    tasks = {t["task"]: t for t in found["tasks"]}
    assert list(tasks) == ["ingest", "clean", "features", "train", "report"]
    ingest = tasks["ingest"]
    assert ingest["a"]["ran"] and ingest["b"]["ran"] and ingest["a"]["duration"] > 0
    (raw,) = ingest["outputs"]
    assert raw["path"] == "notebooks/data/2026-03-01/raw_sales.csv" and raw["a"]["size"] > raw["b"]["size"] > 0
    assert raw["a"]["run_id"] == a and raw["b"]["run_id"] == b
    assert tasks["clean"]["inputs"][0]["path"] == raw["path"]
    cells = {c["b"]: c for c in ingest["notebook"]["cells"]}
    assert "+sample_size = 1500" in cells["injected parameters"]["source"]
    counts = next(c for c in cells.values() if c["outputs"] and "rows:" in c["outputs"])
    assert re.search(r"^-rows: 2\d\d\d$", counts["outputs"], re.M) and re.search(r"^\+rows: 15\d\d$", counts["outputs"], re.M)
    assert re.fullmatch(r"cell \d+ \(In \[\d+\]\)", counts["b"])
    table = next(c for c in cells.values() if c["rich"])  # the DataFrame's HTML: changed, with hashes
    assert table["rich"][0]["mime"] == "text/html" and len(table["rich"][0]["a"]) == 64
    json.dumps(found)  # JSON-ready, as the REST route sends it

    out = nbflow("diff", a, b, "--task", "train", cwd=root)
    assert out.returncode == 0, out.stderr
    assert "sample_size: 2000 -> 1500" in out.stdout and "seed: (not set) -> 11" in out.stdout
    assert "train:" in out.stdout and "ingest:" not in out.stdout.split("data that differs")[-1]
    as_json = json.loads(nbflow("diff", a, b, "--json", cwd=root).stdout)
    assert as_json["parameters"] == found["parameters"]
    assert nbflow("diff", a, "nope", cwd=root).returncode == 2


@pytest.mark.kernel
def test_report_of_the_example_pipeline(two_runs, tmp_path):
    root, a, b, _ = two_runs
    out = nbflow("report", b[-6:], "-o", str(tmp_path / "run.html"), cwd=root)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "run.html").read_text()
    assert b in page and "sample_size" in page and "1500" in page
    assert page.count("<iframe class='nb'") == 5 and "jp-Cell" in page  # nbconvert's rendering of each notebook
    assert "raw_sales.csv" in page and "usual (median)" in page and "<svg" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", page)  # nothing from the network


@pytest.mark.kernel
def test_provenance_recorded_shown_in_runs_show_and_lineage(two_runs):
    root, a, b, head = two_runs
    with Project(root) as project:
        run = project.show(b).run
        assert (run.code_commit, run.code_dirty, run.code_changed) == (head, False, ())
        tree = project.lineage("notebooks/data/2026-03-01/metrics.json")["path"]
    producer = tree["producer"]
    assert producer["run_id"] == b and producer["parameters"] == {"run_date": "2026-03-01", "seed": 11}
    assert producer["code"]["commit"] == head and producer["code_version"] == f"git {head[:12]}"
    assert tree["inputs"][0]["producer"]["code"]["notebook"] == "notebooks/features.ipynb"
    shown = nbflow("lineage", "notebooks/data/2026-03-01/metrics.json", cwd=root).stdout
    assert "seed=11" in shown and f"code git {head[:12]}" in shown
    runs = nbflow("runs", cwd=root)
    assert re.search(rf"{b}.*sample_size=1500 seed=11", runs.stdout) and re.search(rf"{a}.*sample_size=2000", runs.stdout)
    listed = json.loads(nbflow("runs", "--json", cwd=root).stdout)
    assert listed[0]["code_commit"] == head and listed[0]["parameters"]["seed"] == 11
    assert f"code: git {head[:12]}" in nbflow("show", b, cwd=root).stdout


@pytest.mark.kernel
def test_provenance_names_notebooks_that_differ_from_the_commit_and_falls_back_to_the_code_hash(tmp_path):
    write_notebook(tmp_path / "a.ipynb", [("print(1)\nopen('out.txt', 'w').write('1')", ["writes:out.txt"])])
    with Project(tmp_path) as project:  # not in git: no commit; lineage names the code cells' hash
        assert project.run().ok and project.runs()[0].code_commit is None
        producer = project.lineage("out.txt")["path"]["producer"]
        assert producer["code_version"].startswith("code cells sha256 ") and "(not in git)" in producer["code_version"]
    if GIT is None:
        return
    head = commit_all(tmp_path)
    write_notebook(tmp_path / "a.ipynb", [("print(2)\nopen('out.txt', 'w').write('2')", ["writes:out.txt"])])
    write_notebook(tmp_path / "b.ipynb", ["print('new, never committed')"])
    with Project(tmp_path) as project:
        assert project.run().ok
        run = project.runs()[0]
        assert (run.code_commit, run.code_dirty, run.code_changed) == (head, True, ("a.ipynb", "b.ipynb"))
        version = project.lineage("out.txt")["path"]["producer"]["code_version"]
    assert version == f"git {head[:12]} + uncommitted changes to this notebook"


# rough edge 1: one name for a cell everywhere

def test_cell_label_is_one_based_with_the_in_label():
    assert cell_label(4, 5) == "cell 5 (In [5])" and cell_label(0) == "cell 1" and cell_label(None) == ""
    assert with_cell("check failed: AssertionError: x", 5, 7) == "cell 6 (In [7]): check failed: AssertionError: x"
    assert with_cell("the kernel did not start", None) == "the kernel did not start"


@pytest.mark.kernel
def test_a_failing_cell_is_named_one_way_in_summary_show_logs_markers_and_rest(fixture_project):
    root = fixture_project("fails_in_cell_2", "check_fails")
    out = nbflow("run", cwd=root)
    assert out.returncode == 1
    assert "cell 3 (In [3]): ValueError: boom in cell 2" in out.stdout  # source cell 3 of 4, run as In [3]
    check = re.search(r"check_fails\s+check_failed.*?(cell \d+ \(In \[\d+\]\)): check failed: AssertionError", out.stdout)
    assert check and "check cell" not in out.stdout  # no stutter
    run_id = re.search(r"run (\S+): failed", out.stdout).group(1)
    assert "cell 3 (In [3]): ValueError" in nbflow("show", run_id, cwd=root).stdout
    logs = nbflow("logs", "fails_in_cell_2", cwd=root).stdout
    assert "[cell 3 (In [3])] " in logs and "cell 3 (In [3]): ValueError: boom in cell 2" in logs
    executed = json.loads((root / "nbflow-runs" / run_id / "fails_in_cell_2.ipynb").read_text())
    banner = "".join(executed["cells"][0]["source"])
    assert "An exception was encountered at" in banner and ">cell 3 (In [3])</a>" in banner
    with Project(root) as project:
        state = project.pipeline_state(run_id)
    body = views.pipeline("p", state, lambda p: p, lambda p: True)
    error = next(t for t in body["tasks"] if t["name"] == "fails_in_cell_2")["error"]
    assert (error["cell"], error["cell_label"], error["execution_count"]) == (2, "cell 3 (In [3])", 3)


def test_compile_errors_count_cells_from_one(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["#md title", "pass", ("pass", ["retries:many"])])
    out = nbflow("compile", cwd=tmp_path)
    assert out.returncode == 2 and "a.ipynb, cell 3: tag 'retries:many'" in out.stderr


# rough edge 2: logs defaults to the latest run, and shows displayed values

@pytest.mark.kernel
def test_logs_default_to_the_latest_run_where_the_task_ran_and_show_displayed_values(tmp_path):
    write_notebook(tmp_path / "shows.ipynb", ["x = 41", "x + 1", "from IPython.display import display\ndisplay({'a': 1})"])
    write_notebook(tmp_path / "quiet.ipynb", ["y = 1"])
    first = nbflow("run", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert nbflow("run", cwd=tmp_path).returncode == 0  # a no-op run: the tasks did not run in it
    logs = nbflow("logs", "shows", cwd=tmp_path)
    assert logs.returncode == 0, logs.stderr
    assert "42" in logs.stdout and "{'a': 1}" in logs.stdout and "(no output)" not in logs.stdout
    assert re.search(r"run (\S+)", first.stdout).group(1) in logs.stdout
    assert "(no output)" in nbflow("logs", "quiet", cwd=tmp_path).stdout
    missing = nbflow("logs", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "has not run" in missing.stderr


# rough edge 3: a no-op run prints one line and is hidden from `runs`

@pytest.mark.kernel
def test_a_noop_run_prints_one_line_and_is_hidden_unless_asked(tmp_path):
    for name in ("a", "b"):
        write_notebook(tmp_path / f"{name}.ipynb", ["pass"])
    assert nbflow("run", cwd=tmp_path).returncode == 0
    out = nbflow("run", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "2 tasks up to date, nothing ran", out.stdout
    assert not out.stderr.strip()
    with Project(tmp_path) as project:
        shown, everything = project.runs(), project.runs(include_noop=True)
        assert len(shown) == 1 and len(everything) == 2 and project.count_runs(include_noop=True) == 2
    noop = everything[0].id
    assert noop not in nbflow("runs", cwd=tmp_path).stdout and noop in nbflow("runs", "--all", cwd=tmp_path).stdout
    assert not (tmp_path / "nbflow-runs" / noop).exists()


# rough edge 4: one duration per attempt, the same in the summary and in `show`

@pytest.mark.kernel
def test_summary_and_show_give_the_attempts_duration(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["import time\ntime.sleep(0.3)"])
    out = nbflow("run", cwd=tmp_path)
    took = re.search(r"\ba\s+succeeded\s+1\s+(\S+)", out.stdout).group(1)
    run_id = re.search(r"run (\S+): succeeded", out.stdout).group(1)
    assert re.search(rf"\ba\s+succeeded\s+1\s+{re.escape(took)}\s", nbflow("show", run_id, cwd=tmp_path).stdout)
    assert f"a succeeded in {took}" in out.stdout  # and the live line
    with Project(tmp_path) as project:
        (attempt,) = project.show(run_id).attempts
    assert f"{attempt.duration:.1f}s" == took and attempt.duration >= 0.3


# rough edge 5: per-cell progress of running tasks

@pytest.mark.kernel
def test_progress_of_the_running_cell_is_recorded_and_shown(tmp_path):
    write_notebook(tmp_path / "waits.ipynb", ["#md a title", "x = 1",
                                              "import pathlib, time\nwhile not pathlib.Path('go').exists():\n    time.sleep(0.05)",
                                              "y = 2"])
    project = Project(tmp_path)
    heard: list[dict] = []
    reporter = RunReporter()

    def on_event(kind, data):
        reporter(kind, data)
        if kind == "task_progress":
            heard.append(dict(data))

    def recorded() -> dict | None:  # as another process (the panel's server) reads it
        with Project(tmp_path) as reader:
            row = reader.pipeline_state().tasks.get("waits")
            return dict(row.progress) if row and row.progress else None

    done = threading.Thread(target=lambda: project.run(on_event=on_event))
    with reporter:
        done.start()
        try:
            wait_for(recorded, 60, "progress recorded")
            progress = recorded()
            assert progress and (progress["cell"], progress["cells"]) == (3, 4)  # source cell 3 of 4, markdown counted
            with Project(tmp_path) as reader:
                body = views.pipeline("p", reader.pipeline_state(), lambda p: p, lambda p: True)
            assert body["tasks"][0]["progress"] == progress and body["tasks"][0]["state"] == "running"
            assert re.fullmatch(r"running waits: cell 3 of 4 \(\d+\.\ds\)", reporter.live_text())
        finally:
            (tmp_path / "go").write_text("")
            done.join(120)
    project.close()
    assert [(h["cell"], h["cells"]) for h in heard] == [(2, 4), (3, 4), (4, 4)]  # code cells only, as each starts
    with Project(tmp_path) as reader:
        events = [e for e in reader.store.events_since(0) if e["kind"] == "task_progress"]
        assert events and events[-1]["data"]["cell"] in (3, 4)  # written at most once a second: the long cell is there
        state = reader.pipeline_state()
    assert state.tasks["waits"].status == "succeeded"
    assert views.pipeline("p", state, lambda p: p, lambda p: True)["tasks"][0]["progress"] is None


# rough edge 6: any Graphviz format, and edge labels

def test_graph_writes_png_pdf_and_labels_edges(tmp_path):
    write_notebook(tmp_path / "a.ipynb", [("pass", ["writes:a.csv"])])
    write_notebook(tmp_path / "b.ipynb", [("pass", ["reads:a.csv"])])
    for name, magic in (("dag.png", b"\x89PNG"), ("dag.pdf", b"%PDF")):
        out = nbflow("graph", "-o", name, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / name).read_bytes().startswith(magic)
    assert nbflow("graph", "-o", "dag.dot", "--edge-labels", cwd=tmp_path).returncode == 0
    assert 'label="path a.csv"' in (tmp_path / "dag.dot").read_text()
    bad = nbflow("graph", "-o", "dag.docx", cwd=tmp_path)
    assert bad.returncode == 2 and "does not write 'docx'" in bad.stderr


# rough edge 7: crons in words, and the 6-field warning

def test_schedule_list_says_each_cron_in_words_and_warns_about_a_seconds_field(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["pass"])
    (tmp_path / "nbflow.toml").write_text('[schedules.nightly]\ncron = "30 2 * * *"\n'
                                          '[schedules.often]\ncron = "*/20 * * * * *"\n')
    out = nbflow("schedule", "list", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "At 02:30" in out.stdout and "Every second, every 20 minutes" in out.stdout
    warning = " ".join(out.stdout.split())
    assert "schedule often:" in warning and "reads as seconds" in warning and "'* * * * * */20' (Every 20 seconds)" in warning
    assert "schedule nightly:" not in warning
    assert cron.seconds_warning("* * * * * */20") is None and cron.describe("@daily") == "At 00:00"
    listed = json.loads(nbflow("schedule", "list", "--json", cwd=tmp_path).stdout)["schedules"]
    assert {s["name"]: s["cron_description"] for s in listed} == {"nightly": "At 02:30", "often": "Every second, every 20 minutes"}


# rough edge 8: path-safe placeholders

@pytest.mark.kernel
def test_placeholders_in_paths_are_path_safe_and_the_notebook_gets_the_real_value(tmp_path):
    write_notebook(tmp_path / "w.ipynb", [
        ("run_date = '2026-01-01'", ["parameters"]),
        ("import os\nassert ':' in run_date\nfolder = 'data/' + run_date.replace(':', '-')\nos.makedirs(folder)\n"
         "open(folder + '/x.csv', 'w').write(run_date)", ["writes:data/{run_date}/x.csv"]),
    ])
    write_notebook(tmp_path / "r.ipynb", [("pass", ["reads:data/{run_date}/x.csv"])])
    with Project(tmp_path) as project:
        summary = project.run(logical_date="2026-12-02T06:52:20")
        assert summary.ok, summary
        assert (tmp_path / "data" / "2026-12-02T06-52-20" / "x.csv").read_text() == "2026-12-02T06:52:20"
        tree = project.lineage("data/2026-12-02T06-52-20/x.csv")["path"]
        assert tree["producer"]["task"] == "w" and ":" not in tree["path"]
        again = project.run(logical_date="2026-12-02T06:52:20")
        assert [t.status for t in again.tasks] == ["skipped", "skipped"]  # cache keys see the same paths
    task = Project(tmp_path).compile().tasks["w"]
    assert plan.resolve("data/{run_date}/x.csv", {"run_date": "2026-12-02T06:52:20"}, task, str(tmp_path)) == \
        "data/2026-12-02T06-52-20/x.csv"
    assert "run_date.replace(':', '-')" in plan.path_safe_note(task, {"run_date": "2026-12-02T06:52:20"})
    assert plan.path_safe_note(task, {"run_date": "2026-12-02"}) == ""


# rough edge 9: a missing kernel at compile (warning) and dry-run (the run's error)

def test_a_missing_kernel_is_reported_by_compile_and_dry_run(tmp_path):
    shutil.copy(FIXTURES / "missing_kernel.ipynb", tmp_path / "missing_kernel.ipynb")
    out = nbflow("compile", cwd=tmp_path)
    assert out.returncode == 0 and "warning:" in out.stderr and "kernel 'no-such-kernel-xyz' is not installed" in out.stderr
    dry = nbflow("run", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 2 and "kernel 'no-such-kernel-xyz' is not installed" in dry.stderr and "Fix:" in dry.stderr
    assert not (tmp_path / ".nbflow").exists()


# rough edge 10: a mistyped -p suggests the declared name

def test_a_mistyped_parameter_suggests_the_declared_one(tmp_path):
    write_notebook(tmp_path / "a.ipynb", [("n_customers = 10", ["parameters"]), "pass"])
    out = nbflow("run", "--dry-run", "-p", "n_customer=100", cwd=tmp_path)
    assert out.returncode == 0 and "parameter 'n_customer' is not declared" in out.stderr
    assert "did you mean 'n_customers'?" in out.stderr


# rough edge 11: a task running far longer than usual is reported (the forecast's slow rule, tested end to end in
# test_ops_forecast.py), and the live display says how to bound a hung notebook

def test_the_slow_warning_says_to_set_a_timeout(capsys):
    reporter = RunReporter()
    with reporter:
        reporter("warning", {"message": "train slow: 41 s so far, usually 2–3 s", "kind": "slow"})
        reporter("warning", {"message": "something else"})
    out = " ".join(capsys.readouterr().out.split())
    assert "train slow: 41 s so far, usually 2–3 s. A hung notebook runs forever without a timeout: set" in out
    assert out.count("hung notebook") == 1 and "something else" in out


def test_readme_recommends_a_default_timeout():
    readme = (REPO / "README.md").read_text()
    section = readme.split("### A timeout for every task", 1)[1].split("\n## ", 1)[0]
    assert "[defaults]" in section and re.search(r"^timeout = \d+", section, re.M)


# run ids by prefix or suffix

def test_run_ids_match_a_unique_prefix_or_suffix(tmp_path):
    from nbflow.store import Store

    with Store(str(tmp_path / "s.db"), "p") as store:
        for run_id in ("20261202T065220-8d1b48", "20261202T065301-0a4c11"):
            store.create_run(run_id, trigger="t", logical_date="2026-12-02", parameters={}, selection={}, tasks=["a"])
        assert store.get_run("8d1b48").id == "20261202T065220-8d1b48"
        assert store.get_run("20261202T0653").id == "20261202T065301-0a4c11"
        with pytest.raises(NbflowError, match="matches several runs .* as a prefix or a suffix"):
            store.get_run("20261202T065")
