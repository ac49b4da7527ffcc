"""Resources per task: the tags and settings (pure), the local budget (CPUs, GPU ids, named resources), and real kernels
pinned, limited and measured."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.config import load_config
from nbflow.engine.budget import Budget, Grant
from nbflow.errors import ConfigError, ResourceError, TagError
from nbflow.resources import Request, format_size, parse_size
from nbflow.tags import parse_tag

from .conftest import write_notebook

# the grammar


@pytest.mark.parametrize("text, size", [("512M", 512 << 20), ("4G", 4 << 30), ("1.5G", int(1.5 * (1 << 30))), ("100MiB", 100 << 20),
                                        ("64k", 64 << 10), ("1048576", 1 << 20), ("2 GB", 2 << 30)])
def test_sizes_use_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "-1G", "0", "4X", "four", "1e9"])
def test_bad_sizes(text):
    assert parse_size(text) is None


def test_format_size():
    assert (format_size(512 << 20), format_size(int(1.5 * (1 << 30))), format_size(100)) == ("512 MiB", "1.5 GiB", "100 B")


def test_resource_tags_parse():
    assert parse_tag("cpus:2", "a.ipynb", 0).value == 2
    assert parse_tag("gpus:0", "a.ipynb", 0).value == 0
    assert parse_tag("memory:512M", "a.ipynb", 0).value == 512 << 20
    assert parse_tag("resources:license=1", "a.ipynb", 0).value == "license=1"
    assert parse_tag("resources: db.conn = 0.5", "a.ipynb", 0).value == "db.conn=0.5"
    assert parse_tag("memory-heavy", "a.ipynb", 0) is None  # someone else's tag
    assert parse_tag("cpuset", "a.ipynb", 0) is None


@pytest.mark.parametrize("tag, fix", [
    ("cpus:0", "cpus:2"), ("cpus:two", "cpus:2"), ("cpus=2", "cpus:2"), ("gpus:-1", "gpus:1"), ("memory:lots", "memory:512M"),
    ("memory:", "memory:4G"), ("resources:license", "resources:license=1"), ("resources:x=0", "resources:license=1"),
    ("Cpus:2", "cpus:2"),
])
def test_bad_resource_tags_name_the_fix(tag, fix):
    with pytest.raises(TagError) as info:
        parse_tag(tag, "nb/a.ipynb", 3)
    assert "nb/a.ipynb, cell 4" in str(info.value) and fix in str(info.value)


def test_policy_from_tags_and_config(tmp_path: Path):
    (tmp_path / "nbflow.toml").write_text('cpus = 4\ngpus = [0, 1]\n[resources]\nlicense = 2\n[defaults]\nmemory = "1G"\n'
                                          'resources = {license = 1}\n[tasks."b"]\ncpus = 2\ngpus = 1\n')
    write_notebook(tmp_path / "a.ipynb", [("x = 1", ["cpus:3", "memory:256M", "resources:db=1"])])
    write_notebook(tmp_path / "b.ipynb", ["y = 2"])
    project = Project(tmp_path)
    tasks = project.compile().tasks
    assert tasks["a"].policy.request == Request(cpus=3, memory=256 << 20, named=(("db", 1.0), ("license", 1.0)))
    assert tasks["b"].policy.request == Request(cpus=2, memory=1 << 30, gpus=1, named=(("license", 1.0),))
    assert (project.config.cpus, project.config.gpus, dict(project.config.resources)) == (4, ("0", "1"), {"license": 2.0})


@pytest.mark.parametrize("toml, field", [
    ('[defaults]\nmemory = "lots"', "defaults.memory"), ("[defaults]\ncpus = -1", "defaults.cpus"),
    ('[defaults]\nresources = {license = "one"}', "defaults.resources"), ('gpus = "0,1"', "gpus"), ("gpus = [0, 0]", "gpus"),
    ('executor = "ray"', "executor"), ('[dask]\nadress = "tcp://x:1"', "dask.adress"),
    ('[dask]\naddress = "tcp://x:1"\nlocal_workers = 2', "dask"), ("[resources]\nlicense = 0", "resources"),
])
def test_bad_resource_settings_name_the_field(tmp_path: Path, toml, field):
    (tmp_path / "nbflow.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path))
    assert f"field '{field}'" in str(info.value)


# the budget


def test_budget_hands_distinct_cores_and_gpus_and_waits_in_order():
    async def scenario() -> list[str]:
        budget = Budget(cpus=4, cores=[0, 1, 2, 3], gpus=["0", "1"], named={"license": 1})
        a = await budget.acquire(Request(cpus=2, gpus=1))
        b = await budget.acquire(Request(cpus=1, gpus=1))
        assert set(a.cores).isdisjoint(b.cores) and set(a.gpus).isdisjoint(b.gpus) and len(a.cores) == 2
        order: list[str] = []

        async def take(name: str, request: Request) -> Grant:
            grant = await budget.acquire(request)
            order.append(name)
            return grant

        big = asyncio.ensure_future(take("big", Request(cpus=3)))  # waits: 1 CPU free
        small = asyncio.ensure_future(take("small", Request(cpus=1)))  # fits now, but queues behind big: no starvation
        await asyncio.sleep(0.01)
        assert order == []
        budget.release(Request(cpus=2, gpus=1), a)
        grant = await big
        assert len(grant.cores) == 3 and not small.done()
        budget.release(Request(cpus=3), grant)
        await small
        lic = await budget.acquire(Request(named=(("license", 1.0),)))
        waiting = asyncio.ensure_future(budget.acquire(Request(named=(("license", 1.0),))))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        waiting.cancel()  # a cancelled waiter leaves the queue
        await asyncio.gather(waiting, return_exceptions=True)
        budget.release(Request(named=(("license", 1.0),)), lic)
        assert (await budget.acquire(Request(named=(("license", 1.0),)))) == Grant()
        return order

    assert asyncio.run(scenario()) == ["big", "small"]


def test_requests_that_can_never_be_met_are_refused_with_the_fix():
    budget = Budget(cpus=2, cores=[0, 1], gpus=["0", "1"], named={"license": 1})
    assert "cpus:4" in budget.unmet(Request(cpus=4)) and "cpus = ..." in budget.unmet(Request(cpus=4))
    assert "gpus:4" in budget.unmet(Request(gpus=4)) and "2 (0, 1)" in budget.unmet(Request(gpus=4))
    assert "Fix:" in budget.unmet(Request(memory=1 << 40), memory=8 << 30)
    assert "[resources]" in budget.unmet(Request(named=(("db", 1.0),)))
    assert budget.unmet(Request(named=(("license", 2.0),))) is not None
    assert budget.unmet(Request(cpus=2, gpus=2, named=(("license", 1.0),)), memory=8 << 30) is None


def test_run_refuses_an_impossible_request_before_recording_anything(tmp_path: Path):
    (tmp_path / "nbflow.toml").write_text("gpus = [0, 1]\n")
    write_notebook(tmp_path / "train.ipynb", [("x = 1", ["gpus:4"])])
    with pytest.raises(ResourceError) as info:
        Project(tmp_path).run()
    assert "train.ipynb (task train): gpus:4" in str(info.value) and "Fix:" in str(info.value)
    assert not (tmp_path / ".nbflow").exists()
    (tmp_path / "nbflow.toml").write_text("")
    write_notebook(tmp_path / "train.ipynb", [("x = 1", ["memory:1P"])])
    with pytest.raises(ResourceError, match="memory:1024 TiB is more than this machine"):
        Project(tmp_path).run()


def test_doctor_says_what_local_runs_may_reserve(tmp_path: Path):
    (tmp_path / "nbflow.toml").write_text('cpus = 3\ngpus = ["0", "1"]\n[resources]\nlicense = 2\n')
    write_notebook(tmp_path / "a.ipynb", ["x = 1"])
    info = Project(tmp_path).diagnostics()
    assert info["resources"].startswith("cpus 3, gpus [0, 1], license=2, memory ") and "limits by " in info["resources"]
    assert info["executor"] == "local"


# real kernels

PROBE = """import json, os
info = {"affinity": sorted(os.sched_getaffinity(0)), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "omp": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid()}
open(f"{os.environ['NBFLOW_TASK']}.json", "w").write(json.dumps(info))"""


@pytest.mark.kernel
def test_local_run_pins_cpus_hands_out_gpu_ids_and_measures(tmp_path: Path):
    cores = sorted(os.sched_getaffinity(0))
    (tmp_path / "nbflow.toml").write_text('gpus = ["0", "1"]\njobs = 3\n')
    write_notebook(tmp_path / "g1.ipynb", [(PROBE, ["gpus:1", "cpus:1"]), "import time; time.sleep(0.5)"])
    write_notebook(tmp_path / "g2.ipynb", [(PROBE, ["gpus:1"]), "import time; time.sleep(0.5)"])
    write_notebook(tmp_path / "burn.ipynb", [PROBE, "x = bytearray(64 << 20)\nimport time\nt = time.process_time()\n"
                                                    "while time.process_time() - t < 0.3: pass"])
    summary = Project(tmp_path).run()
    assert summary.ok, [(t.task, t.error) for t in summary.tasks]
    g1, g2, burn = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("g1", "g2", "burn"))
    assert {g1["cuda"], g2["cuda"]} == {"0", "1"}  # ran at once (3 jobs), never the same id
    assert len(g1["affinity"]) == 1 and g1["affinity"][0] in cores and g1["omp"] == "1"
    assert burn["cuda"] == "" and burn["affinity"] == cores  # nothing asked: not pinned, and sees none of the GPUs handed out
    attempts = {a.task: a for a in Project(tmp_path).show().attempts}
    assert attempts["g1"].resources == {"cores": g1["affinity"], "gpus": [g1["cuda"]]}
    assert attempts["burn"].peak_rss is not None and attempts["burn"].peak_rss > 64 << 20
    assert attempts["burn"].cpu_seconds is not None and attempts["burn"].cpu_seconds >= 0.3
    assert attempts["burn"].host and attempts["burn"].worker is None


@pytest.mark.kernel
def test_a_task_over_its_memory_limit_ends_memory_exceeded_and_the_run_goes_on(tmp_path: Path):
    write_notebook(tmp_path / "hog.ipynb", [("import os\nopen('hog.pid', 'w').write(str(os.getpid()))", ["memory:300M", "retries:2"]),
                                            "chunks = []\nfor _ in range(40):\n    chunks.append(bytearray(20 << 20))",
                                            "print('never')"])
    write_notebook(tmp_path / "fine.ipynb", ["x = bytearray(100 << 20)"])
    summary = Project(tmp_path).run()
    by = {t.task: t for t in summary.tasks}
    assert by["fine"].status == "succeeded"  # the runner and the other task were not touched
    assert by["hog"].status == "failed" and by["hog"].attempts == 1  # not retried: more memory does not appear by itself
    [attempt] = [a for a in Project(tmp_path).show().attempts if a.task == "hog"]
    assert attempt.error_kind == "memory_exceeded" and attempt.error_cell == 1
    assert "memory limit of 300 MiB" in attempt.error and "peak resident memory" in attempt.error and "Fix: raise memory:" in attempt.error
    assert attempt.resources and attempt.resources["memory"] == 300 << 20 and attempt.resources["memory_by"] in ("rlimit", "cgroup")
    assert attempt.peak_rss is not None and 0 < attempt.peak_rss <= 300 << 20


@pytest.mark.kernel
def test_a_task_waits_for_its_cpus(tmp_path: Path):
    """Two tasks asking for the whole CPU budget never run at once, even with jobs to spare."""
    (tmp_path / "nbflow.toml").write_text("cpus = 2\njobs = 2\n")
    body = "import time, os\nopen(os.environ['NBFLOW_TASK'] + '.t', 'w').write(f'{time.time()} ')\ntime.sleep(0.4)\n" \
           "open(os.environ['NBFLOW_TASK'] + '.t', 'a').write(f'{time.time()}')"
    write_notebook(tmp_path / "a.ipynb", [(body, ["cpus:2"])])
    write_notebook(tmp_path / "b.ipynb", [(body, ["cpus:2"])])
    assert Project(tmp_path).run().ok
    (a0, a1), (b0, b1) = ([float(x) for x in (tmp_path / f"{n}.t").read_text().split()] for n in ("a", "b"))
    assert a1 <= b0 or b1 <= a0
