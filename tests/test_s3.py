"""Data on object storage: s3:// reads, writes and sensor globs against moto's S3 server, started by the test on
127.0.0.1. Credentials and the endpoint come from the AWS_* environment, as they would for any boto/s3fs user."""
from __future__ import annotations

import asyncio
import datetime as dt
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbflow import Project, paths
from nbflow.engine import plan

from .conftest import write_notebook
from .schedule_fakes import FakeClock, settle

boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")
MOTO = str(Path(sys.executable).parent / "moto_server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """moto's S3 on a free port; the AWS_* variables point the runner, its kernels and boto3 at it."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
                    time.sleep(0.1)
            client = boto3.client("s3", region_name="us-east-1")
            for bucket in ("data", "landing"):
                client.create_bucket(Bucket=bucket)
            yield client
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()


def test_urls_are_keys_of_their_own():
    assert paths.project_key("s3://data//in/../in/x.csv", "/p/nb", "/p") == "s3://data/in/x.csv"
    assert paths.project_key("S3://data/x", "/p", "/p") == "s3://data/x"
    assert paths.project_key("file:///p/data/x.csv", "/p/nb", "/p") == "data/x.csv"  # a local path after all
    assert paths.matches("s3://data/in/*.csv", "s3://data/in/a.csv")
    assert not paths.matches("s3://data/in/*.csv", "s3://other/in/a.csv")
    assert not paths.matches("**/*.csv", "s3://data/in/a.csv") and not paths.matches("s3://data/**", "data/in/a.csv")
    assert paths.may_overlap("s3://data/out/{run_date}.csv", "s3://data/out/*.csv")
    assert not paths.may_overlap("s3://data/out/x.csv", "data/out/x.csv")
    assert paths.overlapping(["s3://data/a/x.csv", "a/x.csv"], ["s3://data/a", "**/x.csv"]) == [
        ("s3://data/a/x.csv", "s3://data/a"), ("a/x.csv", "**/x.csv")]
    assert paths.fill("{input_path}", {"input_path": "s3://landing/x.csv"}) == "s3://landing/x.csv"
    assert paths.location("s3://data/x", "/p") == "s3://data/x" and paths.spelled_from("s3://data/x", "nb") == "s3://data/x"


READ_S3 = "import s3fs\nfs = s3fs.S3FileSystem()\n"


@pytest.mark.kernel
def test_s3_inputs_are_hashed_from_metadata_and_unchanged_ones_are_skipped(tmp_path: Path, s3: Any):
    s3.put_object(Bucket="data", Key="in/sales.csv", Body=b"day,n\n1,10\n")
    write_notebook(tmp_path / "load.ipynb", [
        (READ_S3 + "text = fs.cat('s3://data/in/sales.csv').decode()", ["reads:s3://data/in/sales.csv"]),
        ("fs.pipe('s3://data/out/total.txt', str(sum(int(r.split(',')[1]) for r in text.split()[1:])).encode())",
         ["writes:s3://data/out/total.txt"])])
    write_notebook(tmp_path / "report.ipynb", [
        (READ_S3 + "open('report.txt', 'w').write('total=' + fs.cat('s3://data/out/total.txt').decode())",
         ["reads:s3://data/out/total.txt", "writes:report.txt"])])
    project = Project(tmp_path)
    assert project.compile().tasks["report"].upstream == ("load",)  # an edge through an S3 object
    first = project.run()
    assert first.ok, [(t.task, t.error) for t in first.tasks]
    assert (tmp_path / "report.txt").read_text() == "total=10"

    etag = s3.head_object(Bucket="data", Key="in/sales.csv")["ETag"].strip('"')
    assert plan.content_hash("s3://data/in/sales.csv", str(tmp_path)) == (f"etag:{etag}", 11)
    tree = project.lineage("s3://data/out/total.txt")["path"]
    assert tree["producer"]["task"] == "load" and tree["hash"].startswith("etag:")
    assert [i["path"] for i in tree["inputs"]] == ["s3://data/in/sales.csv"] and tree["inputs"][0]["hash"] == f"etag:{etag}"

    second = project.run()  # nothing changed in the bucket: both skipped, nothing downloaded to decide it
    assert [(t.task, t.status) for t in second.tasks] == [("load", "skipped"), ("report", "skipped")]

    s3.put_object(Bucket="data", Key="in/sales.csv", Body=b"day,n\n1,10\n2,5\n")
    third = project.run()
    assert [(t.task, t.status) for t in third.tasks] == [("load", "succeeded"), ("report", "succeeded")]
    assert "input s3://data/in/sales.csv changed" in next(t.reason for t in third.tasks if t.task == "load")
    assert (tmp_path / "report.txt").read_text() == "total=15"

    s3.delete_object(Bucket="data", Key="out/total.txt")  # an output gone from the bucket: its writer runs again
    assert [p.action for p in project.dry_run()] == ["run", "run"]


@pytest.mark.kernel
def test_a_sensor_fires_on_an_uploaded_object_and_the_notebook_gets_its_url(tmp_path: Path, s3: Any):
    (tmp_path / "nbflow.toml").write_text('[sensors.drop]\nglob = "s3://landing/incoming/*.csv"\nstable_seconds = 0\n')
    write_notebook(tmp_path / "ingest.ipynb", [("input_path = ''", ["parameters"]),
                                               READ_S3 + "open('got.txt', 'w').write(input_path + '|' + fs.cat(input_path).decode())"])
    project = Project(tmp_path)

    async def body() -> None:
        scheduler = project.scheduler(clock=FakeClock(dt.datetime.now(dt.timezone.utc)))
        await scheduler.tick()
        assert project.sensors()[0]["pending"] == []
        s3.put_object(Bucket="landing", Key="incoming/a.csv", Body=b"a,1\n")
        s3.put_object(Bucket="landing", Key="incoming/notes.txt", Body=b"not matched")
        await scheduler.tick()
        await settle(scheduler)
        await scheduler.tick()  # the same object does not fire twice
        await settle(scheduler)
        await scheduler.shutdown(5)

    asyncio.run(body())
    assert (tmp_path / "got.txt").read_text() == "s3://landing/incoming/a.csv|a,1\n"  # the URL, unchanged
    [run] = project.runs()
    assert run.trigger == "sensor:drop" and run.status == "succeeded" and run.parameters["input_path"] == "s3://landing/incoming/a.csv"
    [recorded] = project.sensors()[0]["files"]
    assert recorded["path"] == "s3://landing/incoming/a.csv" and recorded["status"] == "succeeded"


def test_a_missing_protocol_package_is_named(tmp_path: Path):
    from nbflow.storage import StorageError, list_objects

    with pytest.raises(StorageError, match="Fix: pip install"):
        list_objects("nosuchproto://bucket/x")
