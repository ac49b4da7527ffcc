"""The REST API of the Jupyter server extension, through a real `jupyter server` over HTTP, real runs and SQLite."""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from jupyter_server.auth.authorizer import Authorizer

import nbflow.server as ext
from nbflow.claims import Claim
from nbflow.project import is_cli_command
from nbflow.server import paths
from nbflow.store import Store

from .conftest import FIXTURES, REPO, stop_processes_under, write_notebook

pytestmark = pytest.mark.kernel
TOKEN = "nbflow-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_root(base: Path) -> Path:
    """The server's root folder: several small projects, plus things a request must never reach."""
    root = base / "root"
    demo = root / "demo"
    write_notebook(demo / "nb" / "a.ipynb", [("n = 3\nlabel = 'x'\nscale = 2 * 3", ["parameters"]),
                                              ("import pathlib\npathlib.Path('data').mkdir(exist_ok=True)\n"
                                               "pathlib.Path('data/a.txt').write_text('a' * n)", ["writes:data/a.txt"])])
    write_notebook(demo / "nb" / "b.ipynb", [("print(open('data/a.txt').read())", ["reads:data/a.txt"])])
    write_notebook(demo / "nb" / "c.ipynb", [("print('c')", ["upstream:a"])])
    (demo / "nbflow.toml").write_text('notebooks = "nb"\njobs = 2\n[parameters]\nn = 4\n[forecast]\nmin_history = 1\n')
    write_notebook(root / "ops" / "load.ipynb", [("x = 1", ["uses:warehouse"])])  # a breaker, never run
    (root / "failing").mkdir()
    shutil.copy(FIXTURES / "fails_in_cell_2.ipynb", root / "failing" / "fails_in_cell_2.ipynb")
    for name in ("sleepy", "race"):  # a run writes out.txt: a second run of the same data is refused (run claims)
        write_notebook(root / name / "sleeps_forever.ipynb", [("import time\nopen('out.txt', 'w').write('1')\n"
                                                               "while True:\n    time.sleep(0.1)", ["writes:out.txt"])])
    for name in ("failing", "sleepy", "race"):
        (root / name / "nbflow.toml").write_text("jobs = 1\n")
    (root / "live").mkdir()
    (root / "gone").mkdir()
    write_notebook(root / "gone" / "t.ipynb", ["print(1)"])
    write_notebook(root / "live" / "t.ipynb", [("open('t.txt', 'w').write('1')", ["writes:t.txt"])])
    (root / "live" / "nbflow.toml").write_text("")
    secret = base / "root-secret"  # a sibling whose name starts with the root's: a string-prefix check lets it in
    secret.mkdir()
    write_notebook(secret / "s.ipynb", ["print('secret')"])
    (secret / "nbflow.toml").write_text("")
    (root / "link").symlink_to(secret, target_is_directory=True)
    return root


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {TOKEN}"

    def get(self, route: str, **params: Any) -> requests.Response:
        return self.http.get(f"{self.url}/nbflow/api/{route}", params=params, timeout=60)

    def post(self, route: str, body: Any = None, **params: Any) -> requests.Response:
        return self.http.post(f"{self.url}/nbflow/api/{route}", params=params, data=json.dumps(body or {}), timeout=90)

    def wait_until(self, project: str, done: Callable[[], Any], timeout: float = 90) -> Any:
        """Wait for `done()` to be true, re-checking each time the store records something (the `changes` long-poll)."""
        deadline = time.monotonic() + timeout
        since = self.get("changes", project=project, since=0, timeout=0).json()["event_id"]
        while True:
            found = done()
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            since = self.get("changes", project=project, since=since, timeout=max(1, min(int(left), 20))).json()["event_id"]

    def wait_run(self, project: str, run_id: str, until: tuple[str, ...] = ("succeeded", "failed", "cancelled", "crashed"),
                 timeout: float = 90) -> dict[str, Any]:
        """The run once its status is one of `until` (or as it is after `timeout`)."""
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.get(f"runs/{run_id}", project=project).json())
            return seen.get("status") in until

        self.wait_until(project, reached, timeout)
        return seen


class ReadOnlyNbflow(Authorizer):
    """Lets a user read nbflow's API but not write to it (start or cancel runs); everything else is allowed."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "nbflow" and action == "write")


@contextlib.contextmanager
def jupyter_server(root: Path, *options: str) -> Iterator[Api]:
    """A real `jupyter server` on a free port with the nbflow extension, stopped at the end."""
    port = free_port()
    log = open(root.parent / f"server-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={root}", "--ServerApp.jpserver_extensions=nbflow.server=True", *options],
        cwd=root.parent, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1", "PYTHONPATH": str(REPO)})
    api = Api(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180  # a loaded machine starts jupyter slowly
    try:
        while True:  # polling a process that is starting: nothing to wait on but its port
            try:
                if api.get("runs", project="").status_code in (200, 403):
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (root.parent / f"server-{port}.log").read_text()
            time.sleep(0.2)
        yield api
    finally:  # also when it never answered: no server is left behind, nor a runner it started
        stop_processes_under(root)
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Path]]:
    root = make_root(tmp_path_factory.mktemp("server"))
    with jupyter_server(root) as api:
        yield api, root


@pytest.fixture(scope="module")
def demo_run(server: tuple[Api, Path]) -> dict[str, Any]:
    """One finished run of the demo project, triggered through the API."""
    api, _ = server
    r = api.post("runs", {"parameters": {"n": 5, "label": "007"}}, project="demo")
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    # POST answers once the run is recorded: it is visible right away.
    assert api.get(f"runs/{run_id}", project="demo").status_code == 200
    return api.wait_run("demo", run_id)


def test_pipeline_graph_before_any_run(server: tuple[Api, Path]) -> None:
    api, root = server
    body = api.get("pipeline", project="demo").json()
    assert body["project"] == "demo" and body["run"] is None and body["event_id"] == 0
    tasks = {t["name"]: t for t in body["tasks"]}
    assert sorted(tasks) == ["a", "b", "c"]
    assert tasks["b"]["upstream"] == ["a"] and tasks["a"]["upstream"] == []
    assert tasks["a"]["path"] == "demo/nb/a.ipynb" and (root / tasks["a"]["path"]).exists()
    assert {t["state"] for t in tasks.values()} == {"pending"}
    edges = {(e["source"], e["target"]): e["via"] for e in body["edges"]}
    assert edges == {("a", "b"): ["path nb/data/a.txt"], ("a", "c"): ["upstream tag"]}
    # parameters cells' literal values, the expression's text when not literal, nbflow.toml on top
    assert body["parameters"] == {"n": 4, "label": "x", "scale": "2 * 3"}
    assert not (root / "demo" / ".nbflow").exists(), "browsing a project must not create its store"
    # a notebook path selects its project (the nearest folder with nbflow.toml)
    assert api.get("pipeline", project="demo/nb/b.ipynb").json()["project"] == "demo"


def test_trigger_runs_the_pipeline_and_records_it(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, root = server
    assert demo_run["status"] == "succeeded", demo_run
    assert demo_run["trigger"] == "jupyter" and demo_run["parameters"]["n"] == 5
    assert demo_run["parameters"]["label"] == "007"  # JSON types survive the trip to the runner process
    body = api.get("pipeline", project="demo").json()
    assert body["run"]["id"] == demo_run["id"] and body["event_id"] > 0
    for task in body["tasks"]:
        assert task["state"] == "succeeded" and task["attempts"] == 1 and task["duration"] > 0
        assert task["executed"].startswith(f"demo/nbflow-runs/{demo_run['id']}/") and (root / task["executed"]).exists()
        assert task["executed_openable"] is True  # nbflow-runs/ is visible: JupyterLab opens it as it is
    assert paths.is_hidden("demo/.nbflow/runs/x/a.ipynb") and not paths.is_hidden("demo/nbflow-runs/x/a.ipynb")
    assert (root / "demo" / "nb" / "data" / "a.txt").read_text() == "aaaaa"
    assert api.get("pipeline", project="demo", run="none").json()["tasks"][0]["state"] == "pending"
    detail = api.get(f"runs/{demo_run['id'][:10]}", project="demo").json()  # a unique prefix works
    assert detail["id"] == demo_run["id"] and detail["selection"]["force"] is False
    a = next(t for t in detail["tasks"] if t["name"] == "a")
    assert a["path"] == "demo/nb/a.ipynb"
    assert [(x["attempt"], x["status"]) for x in a["attempts"]] == [(1, "succeeded")]
    assert a["attempts"][0]["executed"] == a["executed"]
    assert a["attempts"][0]["kernel_start"] in ("fork", "spawn") and a["attempts"][0]["kernel_start_ms"] > 0
    assert (root / "demo" / ".nbflow" / "logs" / f"{demo_run['id']}.log").exists()


def test_trigger_with_a_selection_and_force(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, _ = server
    r = api.post("runs", {"only": ["c"], "force": True}, project="demo")
    assert r.status_code == 202, r.text
    run = api.wait_run("demo", r.json()["run_id"])
    assert run["status"] == "succeeded" and run["selection"] == {"force": True, "from": [], "only": ["c"], "to": []}
    assert [(t["name"], t["state"]) for t in run["tasks"]] == [("c", "succeeded")]
    states = {t["name"]: t["state"] for t in api.get("pipeline", project="demo").json()["tasks"]}
    assert states == {"a": "pending", "b": "pending", "c": "succeeded"}  # not in that run: pending
    assert api.get("runs", project="demo").json()["runs"][0]["id"] == run["id"]


def test_failing_attempt_shows_its_error_cell_and_log(server: tuple[Api, Path]) -> None:
    api, _ = server
    run_id = api.post("runs", project="failing").json()["run_id"]
    assert api.wait_run("failing", run_id)["status"] == "failed"
    task = api.get("pipeline", project="failing").json()["tasks"][0]
    assert task["state"] == "failed"
    # papermill injects the parameters as In [1]: the source notebook's third cell ran as In [3]
    assert task["error"] == {"cell": 2, "cell_label": "cell 3 (In [3])", "execution_count": 3, "kind": "exception",
                             "message": "ValueError: boom in cell 2", "ename": "ValueError", "evalue": "boom in cell 2"}
    assert task["progress"] is None  # only a running task has a current cell
    log = api.get(f"runs/{run_id}/tasks/fails_in_cell_2/attempts/1/log", project="failing").json()
    assert log["error_cell"] == 2 and log["error"] == "ValueError: boom in cell 2" and log["status"] == "failed"
    assert log["error_cell_label"] == "cell 3 (In [3])" and "[cell 3 (In [3])]" in log["log"]
    assert "boom in cell 2" in log["log"] and log["executed"].endswith("fails_in_cell_2.ipynb")
    assert api.get(f"runs/{run_id}/tasks/fails_in_cell_2/attempts/2/log", project="failing").status_code == 404
    assert api.get(f"runs/{run_id}/tasks/nope/attempts/1/log", project="failing").status_code == 404


def test_second_trigger_is_409_and_cancel_stops_the_run(server: tuple[Api, Path]) -> None:
    api, root = server
    first = api.post("runs", project="sleepy")
    assert first.status_code == 202, first.text
    run_id = first.json()["run_id"]
    second = api.post("runs", project="sleepy")
    assert second.status_code == 409 and run_id in second.json()["message"]
    api.wait_run("sleepy", run_id, until=("running",))
    state = api.get("pipeline", project="sleepy").json()
    assert state["run"]["status"] == "running"
    with Store(str(root / "sleepy" / ".nbflow" / "nbflow.db"), "sleepy") as store:
        pid = store.get_run(run_id).pid
    assert api.wait_until("sleepy", lambda: api.get("pipeline", project="sleepy").json()["tasks"][0]["state"] == "running",
                          60)  # cancel once the notebook is actually running
    # the running task's current cell: the notebook loops in its one cell (recorded within PROGRESS_SECONDS of its start;
    # the kernel starts first, which takes seconds on a loaded machine)
    progress = api.wait_until("sleepy", lambda: api.get("pipeline", project="sleepy").json()["tasks"][0]["progress"], 90)
    assert progress and (progress["cell"], progress["cells"]) == (1, 1) and time.time() - 120 < progress["since"] <= time.time()
    r = api.post(f"runs/{run_id}/cancel", project="sleepy")
    assert r.status_code == 202 and r.json() == {"run_id": run_id}
    run = api.wait_run("sleepy", run_id, timeout=60)
    assert run["status"] == "cancelled", run
    assert api.get("pipeline", project="sleepy").json()["tasks"][0]["state"] == "cancelled"
    assert api.post(f"runs/{run_id}/cancel", project="sleepy").status_code == 409
    with contextlib.suppress(psutil.NoSuchProcess):  # the server reaps its runner: no zombie left behind
        psutil.Process(pid).wait(timeout=20)
    assert not psutil.pid_exists(pid), psutil.Process(pid).status()


def test_two_triggers_at_once_start_one_run(server: tuple[Api, Path]) -> None:
    api, _ = server
    barrier = threading.Barrier(2)
    answers: list[requests.Response] = []

    def trigger() -> None:
        session = Api(api.url)
        barrier.wait()
        answers.append(session.post("runs", project="race"))

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [202, 409], [r.text for r in answers]
    run_id = next(r.json()["run_id"] for r in answers if r.status_code == 202)
    assert api.get("runs", project="race").json()["total"] == 1
    assert api.post(f"runs/{run_id}/cancel", project="race").status_code == 202
    assert api.wait_run("race", run_id, timeout=60)["status"] == "cancelled"


def test_changes_long_poll_answers_within_a_second_of_a_state_change(server: tuple[Api, Path]) -> None:
    api, root = server
    with Store(str(root / "live" / ".nbflow" / "nbflow.db"), "live") as store:
        since = store.last_event_id()
        t0 = time.monotonic()
        quiet = api.get("changes", project="live", since=since, timeout=1).json()
        assert {k: quiet[k] for k in ("event_id", "changed")} == {"event_id": since, "changed": False}
        assert quiet["sources"] and 0.9 < time.monotonic() - t0 < 2.5  # the notebooks' fingerprint comes along
        answer: dict[str, Any] = {}

        def poll() -> None:
            answer.update(api.get("changes", project="live", since=since, timeout=20).json())
            answer["at"] = time.monotonic()

        poller = threading.Thread(target=poll)
        poller.start()
        poller.join(timeout=1.0)
        assert poller.is_alive()  # nothing changed: the poll is still waiting on the server
        changed_at = time.monotonic()
        store.create_run("live-1", trigger="test", logical_date="2026-01-01",
                         parameters={}, selection={}, tasks=["t"])
        store.finish_run("live-1", "succeeded")
        poller.join(timeout=10)
        assert answer["changed"] is True and answer["event_id"] > since
        latency = answer["at"] - changed_at
        print(f"changes long-poll latency: {latency * 1000:.0f} ms")
        assert latency < 1.0


def test_runs_are_paged_newest_first(server: tuple[Api, Path]) -> None:
    api, root = server
    with Store(str(root / "live" / ".nbflow" / "nbflow.db"), "live") as store:
        for i in range(5):
            store.create_run(f"page-{i}", trigger="test", logical_date="2026-01-01",
                             parameters={"i": i}, selection={}, tasks=["t"])
            store.finish_run(f"page-{i}", "succeeded")
    # runs that ran nothing (no attempt, succeeded: every task was up to date) are listed only with all=1
    assert [r["id"] for r in api.get("runs", project="live").json()["runs"] if r["id"].startswith("page-")] == []
    assert api.get("runs", project="live").json()["total"] == 0
    body = api.get("runs", project="live", limit=2, offset=1, all=1).json()
    total = body["total"]
    assert total >= 5 and [r["id"] for r in body["runs"]] == ["page-3", "page-2"]
    assert body["runs"][0]["parameters"] == {"i": 3} and body["runs"][0]["duration"] >= 0
    assert api.get("runs", project="live", limit=2, offset=total, all=1).json()["runs"] == []
    assert api.get("runs", project="live", all=2).status_code == 400
    assert api.get("runs", project="live", limit=0).status_code == 400
    assert api.get("runs", project="failing", limit="x").status_code == 400


def test_lineage_of_a_task_and_of_a_path(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, _ = server
    task = api.get("lineage", project="demo", task="b").json()["task"]
    assert task["attempt"]["run_id"] == demo_run["id"]
    (read,) = task["reads"]
    assert read["path"] == "nb/data/a.txt" and len(read["hash"]) == 64 and read["producer"]["task"] == "a"
    written = api.get("lineage", project="demo", task="a").json()["task"]["writes"]
    assert [(w["path"], [c["task"] for c in w["consumers"]]) for w in written] == [("nb/data/a.txt", ["b"])]
    tree = api.get("lineage", project="demo", path="nb/data/a.txt").json()["path"]
    assert tree["producer"]["run_id"] == demo_run["id"] and tree["producer"]["task"] == "a"
    assert api.get("lineage", project="demo").status_code == 400
    assert api.get("lineage", project="demo", task="nope").status_code == 404
    assert api.get("lineage", project="demo", path="data/none.txt").status_code == 404
    assert api.get("lineage", project="demo", path="../../root-secret/s.ipynb").status_code == 404


def test_bad_requests_are_400_or_404_with_a_message(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, _ = server
    cases = [
        (api.post("runs", {"only": ["nope"]}, project="demo"), 400, "nope"),
        (api.post("runs", {"parameters": [1]}, project="demo"), 400, "parameters"),
        (api.post("runs", {"parameters": {"not a name": 1}}, project="demo"), 400, "not a name"),
        (api.post("runs", {"force": "yes"}, project="demo"), 400, "force"),
        (api.post("runs", {"colour": 1}, project="demo"), 400, "colour"),
        (api.http.post(f"{api.url}/nbflow/api/runs?project=demo", data="{not json", timeout=30), 400, ""),
        (api.get("runs/nope", project="demo"), 404, "nope"),
        (api.get("runs/nope", project="race/../missing"), 404, "missing"),
        (api.post("runs/nope/cancel", project="demo"), 404, "nope"),
        (api.get("pipeline", project="demo", run="nope"), 404, "nope"),
    ]
    for response, status, word in cases:
        assert response.status_code == status, (response.request.url, response.text)
        message = response.json()["message"]
        assert word in message and "Traceback" not in message


@pytest.mark.parametrize("project", ["..", "../root-secret", "demo/../../root-secret", "/etc", str(Path("/tmp").resolve()),
                                     "link", "link/s.ipynb", "~"])
def test_no_route_reaches_outside_the_root(server: tuple[Api, Path], project: str) -> None:
    api, _ = server
    for r in (api.get("pipeline", project=project), api.get("runs", project=project),
              api.get("changes", project=project, timeout=0), api.post("runs", project=project)):
        assert r.status_code == 404, (project, r.status_code, r.text)
        assert "outside" in r.json()["message"] or "relative" in r.json()["message"] or "no folder" in r.json()["message"]


def sample_urls() -> list[tuple[str, str]]:
    """(method, path) for every HTTP method of every registered route, with sample values in its groups."""
    out = []
    for path, handler in ext.handlers("/"):
        concrete = (path.replace("(?P<run_id>[^/]+)", "r1").replace("(?P<task>.+)", "t")
                    .replace("(?P<attempt>[0-9]+)", "1").replace("(?P<name>[^/]+)", "s1")
                    .replace("(?P<action>pause|resume|remove)", "pause"))
        assert "(" not in concrete, f"add a sample value for the groups of {path}"
        for method in ("get", "post", "put", "patch", "delete"):
            if method in vars(handler):
                out.append((method.upper(), concrete + "?project=demo"))
    return out


def test_every_route_rejects_unauthenticated_calls(server: tuple[Api, Path]) -> None:
    api, _ = server
    urls = sample_urls()
    assert len(urls) == len(ext.ROUTES) + 3  # runs, schedules and notebook-tags have GET and POST
    anonymous = requests.Session()
    for method, path in urls:
        r = anonymous.request(method, api.url + path, timeout=30)
        assert r.status_code in (401, 403), (method, path, r.status_code)
        r = anonymous.request(method, api.url + path, headers={"Authorization": "token wrong"}, timeout=30)
        assert r.status_code in (401, 403), (method, path, r.status_code)


def test_the_extension_registers_exactly_the_tested_routes() -> None:
    """A handler class in nbflow.server that is not in ROUTES would escape the auth test above."""
    registered: list[Any] = []

    class FakeApp:
        settings = {"base_url": "/base/"}

        def add_handlers(self, host: str, handlers: list[Any]) -> None:
            registered.extend(handlers)

    class FakeServer:
        web_app, root_dir = FakeApp(), "/tmp"
        log = __import__("logging").getLogger("test")

    ext._load_jupyter_server_extension(FakeServer())
    assert registered == ext.handlers("/base/")
    assert all(p.startswith("/base/nbflow/api/") for p, _ in registered)
    import tornado.web

    modules = [m for name, m in sys.modules.items() if name.startswith("nbflow.server")]
    classes = {c for m in modules for _, c in inspect.getmembers(m, inspect.isclass)
               if issubclass(c, tornado.web.RequestHandler) and c.__module__.startswith("nbflow.server")}
    routed = {h for _, h in ext.ROUTES}
    assert classes - {ext.base.NbflowHandler} == routed
    for handler in routed:
        for method in ("get", "post", "put", "patch", "delete"):
            if method in vars(handler):  # every method went through base.route (authenticated + authorized)
                assert getattr(vars(handler)[method], "__wrapped__", None) is not None, (handler, method)
    assert {h.auth_resource for h in routed} == {"nbflow"}


def test_operations_routes_forecast_alerts_and_breakers(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    api, root = server
    body = api.get("pipeline", project="demo", run=demo_run["id"]).json()
    assert body["run"]["id"] == demo_run["id"] and body["run"]["eta"] is None  # finished: no ETA
    tasks = {t["name"]: t for t in body["tasks"]}
    assert tasks["a"]["expected"]["samples"] >= 1 and tasks["a"]["expected"]["median"] > 0
    assert tasks["a"]["expected_end"] is None
    assert api.get("alerts", project="demo").json() == {"alerts": []}
    assert api.get("breakers", project="demo").json() == {"breakers": []}
    missing = api.post("breakers/warehouse/reset", project="demo")
    assert missing.status_code == 404 and "no circuit breaker 'warehouse'" in missing.json()["message"]
    [breaker] = api.get("breakers", project="ops").json()["breakers"]
    assert (breaker["name"], breaker["state"], breaker["used_by"], breaker["threshold"]) == ("warehouse", "closed", ["load"], 3)
    reset = api.post("breakers/warehouse/reset", project="ops")
    assert reset.status_code == 200 and reset.json()["breaker"]["state"] == "closed"
    assert api.get("alerts", project="ops", limit=0).status_code == 400


def test_posts_need_the_xsrf_token_when_authenticated_by_cookie(server: tuple[Api, Path]) -> None:
    api, _ = server
    browser = requests.Session()  # logs in with the token once, then uses only the cookie, as a browser does
    assert browser.get(f"{api.url}/nbflow/api/runs", params={"project": "demo", "token": TOKEN}, timeout=30).status_code == 200
    assert any(c.name.startswith("username-") for c in browser.cookies)
    url = f"{api.url}/nbflow/api/runs?project=demo"
    assert browser.get(url, timeout=30).status_code == 200  # the cookie alone authenticates
    r = browser.post(url, data=json.dumps({"only": ["nope"]}), timeout=30)
    assert r.status_code == 403 and "xsrf" in r.text.lower()
    assert browser.get(f"{api.url}/lab", timeout=30).status_code == 200  # the page a browser loads sets the _xsrf cookie
    xsrf = browser.cookies.get("_xsrf")
    assert xsrf
    r = browser.post(url, data=json.dumps({"only": ["nope"]}), headers={"X-XSRFToken": xsrf}, timeout=30)
    assert r.status_code == 400 and "nope" in r.json()["message"]  # past auth and XSRF: the body's error


def test_cancel_refuses_a_runner_that_is_not_the_nbflow_command(server: tuple[Api, Path]) -> None:
    """A run inside a notebook kernel (or this test process) is not stopped with SIGTERM: that would kill the kernel."""
    api, root = server
    with Store(str(root / "live" / ".nbflow" / "nbflow.db"), "live") as store:
        store.create_run("in-kernel", trigger="manual", logical_date="2026-01-01",
                         parameters={}, selection={}, tasks=["t"], claims=[Claim("live", "t.txt", "write")])
        try:
            assert api.get("runs/in-kernel", project="live").json()["status"] == "running"
            refused = api.post("runs", project="live")  # it is a live run (this process) holding t.txt
            assert refused.status_code == 409 and "run in-kernel" in refused.json()["message"] and "t.txt" in refused.json()["message"]
            r = api.post("runs/in-kernel/cancel", project="live")
            assert r.status_code == 409 and "not an `nbflow run` command" in r.json()["message"]
        finally:
            store.finish_run("in-kernel", "succeeded")
    assert api.get("runs/in-kernel", project="live").json()["status"] == "succeeded"


def test_a_deleted_store_is_let_go(server: tuple[Api, Path]) -> None:
    """`rm -rf .nbflow` (as `make clean` does) while the server holds the store open: the next answers start afresh."""
    api, root = server
    with Store(str(root / "gone" / ".nbflow" / "nbflow.db"), "gone") as store:
        store.create_run("old", trigger="test", logical_date="2026-01-01", parameters={},
                         selection={}, tasks=["t"])
        store.finish_run("old", "failed")
    before = api.get("pipeline", project="gone").json()
    assert before["run"]["id"] == "old" and before["event_id"] == 2
    shutil.rmtree(root / "gone" / ".nbflow")
    after = api.get("pipeline", project="gone").json()
    assert after["run"] is None and after["event_id"] == 0
    answer = api.get("changes", project="gone", since=2, timeout=5).json()
    assert {k: answer[k] for k in ("event_id", "changed")} == {"event_id": 0, "changed": True}


def test_routes_ask_the_authorizer_for_resource_nbflow(tmp_path: Path) -> None:
    """@authorized is wired: a server whose authorizer denies writes on 'nbflow' refuses POSTs, allows GETs."""
    root = tmp_path / "root"
    write_notebook(root / "t.ipynb", ["print(1)"])
    with jupyter_server(root, "--ServerApp.authorizer_class=tests.test_server.ReadOnlyNbflow") as api:
        assert api.get("pipeline").status_code == 200
        r = api.post("runs")
        assert r.status_code == 403 and "nbflow" in r.json()["message"]
        assert api.post("runs/x/cancel").status_code == 403
    assert not (root / ".nbflow").exists()


@pytest.mark.parametrize(("args", "is_runner"), [
    (["/venv/bin/python", "-m", "nbflow", "run", "/p", "--run-id", "x"], True),
    (["/venv/bin/python", "/venv/bin/nbflow", "resume", "x"], True),
    (["/venv/bin/nbflow", "run"], True),
    (["/venv/bin/python", "-m", "nbflow", "runs"], False),
    (["/venv/bin/python", "-m", "ipykernel_launcher", "-f", "kernel.json"], False),
    (["/venv/bin/python", "-c", "code", "nbflow", "run"], False),
    ([], False),
])
def test_only_the_nbflow_command_counts_as_a_runner(args: list[str], is_runner: bool) -> None:
    assert is_cli_command(args) is is_runner


def test_compare_two_runs_of_the_demo(server: tuple[Api, Path], demo_run: dict[str, Any]) -> None:
    """GET runs/compare: what the panel's Compare view draws, from Project.diff."""
    api, root = server
    r = api.post("runs", {"parameters": {"n": 7, "label": "007"}}, project="demo")
    assert r.status_code == 202, r.text
    other = api.wait_run("demo", r.json()["run_id"])
    assert other["status"] == "succeeded", other
    body = api.get("runs/compare", project="demo", a=demo_run["id"][-6:], b=other["id"][:18]).json()  # suffix, prefix
    assert body["a"]["id"] == demo_run["id"] and body["b"]["id"] == other["id"]
    assert body["parameters"] == [{"name": "n", "a": 5, "b": 7, "only_in": None}]
    tasks = {t["task"]: t for t in body["tasks"]}
    a = tasks["a"]
    assert a["a"]["status"] == a["b"]["status"] == "succeeded" and a["a"]["ran"] and a["b"]["duration"] > 0
    assert a["a"]["executed"] == f"demo/nbflow-runs/{demo_run['id']}/a.ipynb" and (root / a["a"]["executed"]).exists()
    (written,) = a["outputs"]
    assert written["path"] == "nb/data/a.txt" and (written["a"]["size"], written["b"]["size"]) == (5, 7)
    assert written["a"]["hash"] != written["b"]["hash"] and tasks["b"]["inputs"][0]["path"] == "nb/data/a.txt"
    cells = a["notebook"]["cells"]
    injected = next(c for c in cells if c["a"] == "injected parameters")
    assert "-n = 5" in injected["source"] and "+n = 7" in injected["source"]
    only_b = api.get("runs/compare", project="demo", a=demo_run["id"], b=other["id"], task="b").json()
    assert [t["task"] for t in only_b["tasks"]] == ["b"]
    assert "-aaaaa" in only_b["tasks"][0]["notebook"]["cells"][-1]["outputs"]  # the text output, as a unified diff
    assert api.get("runs/compare", project="demo", a=demo_run["id"]).status_code == 400
    assert api.get("runs/compare", project="demo", a=demo_run["id"], b="nosuchrun").status_code == 404
