"""Operations without kernels: settings, the breaker state machine and the forecast driven by a fake clock and
recorded histories, alert texts, and the AlertService on a real store with fake targets (the real deliveries to a
local HTTP server are in test_ops_alerts.py)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from nbflow import Project
from nbflow.config import load_config
from nbflow.errors import ConfigError, TagError
from nbflow.executors.base import AttemptResult
from nbflow.ops import breakers as br
from nbflow.ops import forecast as fc
from nbflow.ops.alerts import Alert, AlertService, human
from nbflow.ops.settings import AlertSettings, BreakerSpec, ForecastSettings, ops_settings, parse_duration
from nbflow.ops.targets import alert_env, check_targets
from nbflow.states import AttemptState, BreakerState, DeliveryState, ErrorKind, Severity, TaskState
from nbflow.store import Store, migrations
from nbflow.tags import Tag, parse_tag

from .conftest import write_notebook

# settings and tags


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800), (45, 45),
                                          ("0.5s", 0.5), ("250ms", 0.25), ("10", 10.0)])
def test_durations_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["15 minutes", "m15", "", "1h 30x", True, None, [1]])
def test_bad_durations_are_none(text):
    assert parse_duration(text) is None


def test_uses_tag_parses_and_a_bad_one_says_the_fix():
    assert parse_tag("uses:warehouse", "nb.ipynb", 1) == Tag("uses", "warehouse")
    with pytest.raises(TagError) as info:
        parse_tag("uses:my warehouse", "nb.ipynb", 2)
    assert "nb.ipynb, cell 3" in str(info.value) and "uses:warehouse" in str(info.value)
    with pytest.raises(TagError, match="uses:warehouse"):
        parse_tag("uses=warehouse", "nb.ipynb", 0)


def _config(tmp_path: Path, toml: str):
    (tmp_path / "nbflow.toml").write_text(toml)
    write_notebook(tmp_path / "load.ipynb", [("x = 1", ["uses:warehouse"]), ("y = 2", ["uses:api"])])
    project = Project(tmp_path)
    return project, project.compile()


def test_breakers_get_defaults_overrides_and_every_used_name(tmp_path):
    project, pipeline = _config(tmp_path, '[breakers]\nfailures = 5\ncooldown = "1m"\n'
                                          '[breakers.warehouse]\nwindow = "5m"\nbreaker_errors = ["ConnectionError"]\n'
                                          '[breakers.unused]\nfailures = 1\n')
    assert pipeline.tasks["load"].uses == ("warehouse", "api")
    s = ops_settings(project.config, pipeline)
    assert s.breakers["warehouse"] == BreakerSpec("warehouse", 5, 300.0, 60.0, ("ConnectionError",))
    assert s.breakers["api"] == BreakerSpec("api", 5, 900.0, 60.0, ())  # no table: the [breakers] defaults
    assert any("breakers.unused" in w and "uses:unused" in w for w in s.warnings)


@pytest.mark.parametrize("toml,field,fix", [
    ('[alerts]\ncritical = "slak://x"\n', "alerts.critical[0]", "slack://"),
    ('[alerts]\nwarning = [3]\n', "alerts.warning", "json://"),
    ('[alerts]\ncritcal = ["json://x/y"]\n', "alerts.critcal", "critical"),
    ('[alerts]\ncritical = ["command:"]\n', "alerts.critical[0]", "command:./page-oncall.sh"),
    ('[alerts]\ncritical = ["command:./missing.sh"]\n', "alerts.critical[0]", "chmod +x"),
    ('[breakers.warehouse]\nwindow = "fifteen"\n', "breakers.warehouse.window", '"15m"'),
    ('[breakers.warehouse]\nfailures = 0\n', "breakers.warehouse.failures", "failures = 1"),
    ('[tasks."load"]\nalert = "loud"\n', "tasks.load.alert", '"critical"'),
    ('[tasks."load"]\nsla = "soon"\n', "tasks.load.sla", '"15m"'),
    ('[openlineage]\ntransport = "kafka"\n', "openlineage.transport", 'transport = "http"'),
    ('[openlineage]\ntransport = "http"\nurl = "marquez:5000"\n', "openlineage.url", "http://marquez:5000"),
    ('[forecast]\nslow_margin = "a bit"\n', "forecast.slow_margin", '"60s"'),
])
def test_bad_operations_settings_name_the_field_and_the_fix(tmp_path, toml, field, fix):
    project, pipeline = _config(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        project.ops_settings(pipeline)
    assert info.value.field == field and fix in str(info.value) and "nbflow.toml" in str(info.value)


def test_task_alert_and_sla_keys_are_not_taken_for_policy_fields(tmp_path):
    project, pipeline = _config(tmp_path, '[tasks."load"]\nalert = "warning"\nsla = "45m"\nretries = 2\n')
    assert pipeline.tasks["load"].policy.retries == 2
    s = project.ops_settings(pipeline)
    assert s.task_alert == {"load": "warning"} and s.task_sla == {"load": 2700.0}
    assert load_config(str(tmp_path)).alerts == {}


def test_command_targets_are_checked_and_get_the_alert_in_env(tmp_path):
    script = tmp_path / "page.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    check_targets({Severity.CRITICAL: ("command:./page.sh --team data", "json://127.0.0.1:9/x")}, "nbflow.toml", str(tmp_path))
    env = alert_env(Alert("task_failed", "p", "task t failed", run_id="r1", task="t").as_json())
    assert env["NBFLOW_ALERT_SEVERITY"] == "critical" and env["NBFLOW_ALERT_RUN_ID"] == "r1" and env["NBFLOW_ALERT_TASK"] == "t"
    assert '"event": "task_failed"' in env["NBFLOW_ALERT_JSON"]


# the breaker state machine, with a fake clock

SPEC = BreakerSpec("warehouse", failures=3, window=900.0, cooldown=600.0)


def failed(ename: str = "ConnectionError", kind: ErrorKind = ErrorKind.EXCEPTION, status: AttemptState = AttemptState.FAILED):
    return AttemptResult(status=status, started_at=0.0, ended_at=1.0, error_kind=kind, error=f"{ename}: refused",
                         ename=ename, evalue="refused", retriable=True)


OK = AttemptResult(status=AttemptState.SUCCEEDED, started_at=0.0, ended_at=1.0)


def apply(rec, change):
    new, result = change
    return (new if new is not None else rec), result


def test_a_breaker_opens_after_n_failures_within_the_window_and_blocks_with_the_next_probe_time():
    rec = None
    for t in (0.0, 100.0):
        rec, change = apply(rec, br.settle(SPEC, rec, t, failed(), "r/t@h:1"))
        assert change is None and rec.state == BreakerState.CLOSED
    rec, change = apply(rec, br.settle(SPEC, rec, 200.0, failed(), "r/t@h:1"))
    assert change == "opened" and rec.state == BreakerState.OPEN and rec.opened_at == 200.0
    assert rec.last_error == "ConnectionError: refused"
    _, answer = br.admit(SPEC, rec, 300.0, "r2/t@h:1")
    assert answer.kind == "block" and "circuit breaker 'warehouse' is open" in answer.reason and "next probe at" in answer.reason
    assert br.shown_state(SPEC, rec, 300.0) == BreakerState.OPEN and br.next_probe(SPEC, rec) == 800.0


def test_failures_outside_the_window_do_not_add_up():
    rec = None
    for t in (0.0, 500.0, 1000.0, 1500.0):  # never 3 within 900 s
        rec, change = apply(rec, br.settle(SPEC, rec, t, failed(), "o"))
        assert change is None
    assert br.recent(SPEC, rec, 1500.0) == (1000.0, 1500.0)


def test_check_failures_cancellations_and_other_exceptions_never_count():
    narrow = BreakerSpec("w", failures=1, errors=("ConnectionError", "TimeoutError"))
    assert not br.counts(narrow, failed(status=AttemptState.CHECK_FAILED, kind=ErrorKind.CHECK))
    assert not br.counts(narrow, failed(kind=ErrorKind.CANCELLED))
    assert not br.counts(narrow, failed(kind=ErrorKind.MISSING_OUTPUT))
    assert not br.counts(narrow, failed("KeyError"))
    assert br.counts(narrow, failed("TimeoutError"))
    assert br.counts(BreakerSpec("w"), failed("KeyError"))  # without breaker_errors every exception counts


def test_half_open_lets_one_probe_through_success_closes_and_failure_reopens():
    rec = None
    for t in (0.0, 1.0, 2.0):
        rec, _ = apply(rec, br.settle(SPEC, rec, t, failed(), "o"))
    now = 2.0 + SPEC.cooldown
    assert br.shown_state(SPEC, rec, now) == BreakerState.HALF_OPEN
    rec, answer = apply(rec, br.admit(SPEC, rec, now, "run1/load@h:1"))
    assert answer.kind == "probe" and rec.probe_owner == "run1/load@h:1"
    _, other = br.admit(SPEC, rec, now + 1, "run2/load@h:1")  # one probe at a time
    assert other.kind == "block" and "a probe (run1/load) is running" in other.reason
    closed, change = br.settle(SPEC, rec, now + 5, OK, "run1/load@h:1")
    assert change == "closed" and closed.state == BreakerState.CLOSED and closed.failures == ()
    reopened, change = br.settle(SPEC, rec, now + 5, failed(), "run1/load@h:1")
    assert change == "reopened" and reopened.state == BreakerState.OPEN and reopened.opened_at == now + 5
    checked, change = br.settle(SPEC, rec, now + 5, failed(status=AttemptState.CHECK_FAILED, kind=ErrorKind.CHECK), "run1/load@h:1")
    assert change == "closed"  # the notebook reached its check: the service answered


def test_a_probe_whose_process_is_gone_is_taken_over():
    rec = None
    for t in (0.0, 1.0, 2.0):
        rec, _ = apply(rec, br.settle(SPEC, rec, t, failed(), "o"))
    dead = f"run1/load@{br.HOST}:999999"
    rec, _ = apply(rec, br.admit(SPEC, rec, 1000.0, dead))
    _, answer = br.admit(SPEC, rec, 1001.0, "run2/load@h:1")
    assert answer.kind == "probe"


def test_breaker_state_is_shared_through_the_store(tmp_path):
    path = str(tmp_path / "nbflow.db")
    with Store(path, "p") as a, Store(path, "p") as b:
        for t in (0.0, 1.0, 2.0):
            (a if t != 1.0 else b).update_breaker("warehouse", lambda rec, t=t: br.settle(SPEC, rec, t, failed(), "o"))
        assert b.breaker("warehouse").state == BreakerState.OPEN
        assert [x.name for x in a.breakers()] == ["warehouse"]
        before = a.update_breaker("warehouse", lambda rec: br.reset(rec, 3.0))
        assert before.state == BreakerState.OPEN and b.breaker("warehouse").state == BreakerState.CLOSED


# forecasts with recorded histories and a fake clock

def test_estimates_percentiles_and_the_slow_threshold():
    e = fc.estimate([180, 200, 240, 190, 210, 185, 230, 195, 205, 220], 3)
    assert e.median == pytest.approx(202.5) and e.n == 10
    assert e.p90 == pytest.approx(231.0) and e.p95 == pytest.approx(235.5)
    assert e.usually() == "usually 3–4 min"
    assert fc.slow_after(e, ForecastSettings()) == pytest.approx(471.0)  # max(p95 x 2, p95 + 60)
    short = fc.estimate([10, 11, 12], 3)
    assert fc.slow_after(short, ForecastSettings()) == pytest.approx(short.p95 + 60)
    assert fc.estimate([10, 11], 3) is None


def _diamond(tmp_path: Path):
    write_notebook(tmp_path / "a.ipynb", [("open('a.txt', 'w')", ["writes:a.txt"])])
    write_notebook(tmp_path / "b.ipynb", [("open('a.txt')", ["reads:a.txt"]), ("open('b.txt', 'w')", ["writes:b.txt"])])
    write_notebook(tmp_path / "c.ipynb", [("open('a.txt')", ["reads:a.txt"]), ("open('c.txt', 'w')", ["writes:c.txt"])])
    write_notebook(tmp_path / "d.ipynb", [("open('b.txt')", ["reads:b.txt"]), ("open('c.txt')", ["reads:c.txt"])])
    return Project(tmp_path).compile()


def test_eta_follows_the_critical_path_and_the_work_left(tmp_path):
    pipeline = _diamond(tmp_path)
    known = {"a": fc.Estimate(10, 12, 13, 5), "b": fc.Estimate(100, 120, 130, 5), "c": fc.Estimate(30, 40, 45, 5),
             "d": fc.Estimate(20, 25, 26, 5)}
    now = 1000.0
    states = {"a": TaskState.SUCCEEDED, "b": TaskState.RUNNING, "c": TaskState.RUNNING, "d": TaskState.PENDING}
    e = fc.eta(pipeline, states, states, {"b": now - 40, "c": now - 10}, known, now, jobs=4)
    assert e.finishes == {"b": now + 60, "c": now + 20, "d": now + 80}
    assert e.finish == now + 80 and e.remaining == 80 and e.critical_path == ("b", "d") and e.unknown == ()
    one = fc.eta(pipeline, states, states, {"b": now - 40, "c": now - 10}, known, now, jobs=1)
    assert one.finish == now + 100  # 60 + 20 + 20 s of work on one slot outlasts the critical path
    late = fc.eta(pipeline, states, states, {"b": now - 110, "c": now - 10}, known, now, jobs=4)
    assert late.finishes["b"] == now + 10  # past its median: up to its p90
    unknown = fc.eta(pipeline, states, states, {}, {"d": known["d"]}, now, jobs=4)
    assert set(unknown.unknown) == {"b", "c"} and unknown.finish == now + 20


def test_sla_status():
    assert fc.sla_status(deadline=100, finish=90, ended=None, now=50) is None
    assert fc.sla_status(deadline=100, finish=120, ended=None, now=50) == "at_risk"
    assert fc.sla_status(deadline=100, finish=120, ended=None, now=101) == "missed"
    assert fc.sla_status(deadline=100, finish=None, ended=99, now=200) is None
    assert fc.sla_status(deadline=100, finish=None, ended=130, now=200) == "missed"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def record_history(project: Project, monkeypatch, task: str, durations: list[float], start: float = 1_000_000.0) -> None:
    """Successful attempts of `task` that took `durations` seconds, recorded in the real store by a fake clock."""
    import nbflow.store.store as store_module

    clock = FakeClock(start)
    monkeypatch.setattr(store_module, "time", clock)
    for i, seconds in enumerate(durations):
        run_id = f"hist-{task}-{i}"
        project.store.create_run(run_id, trigger="manual", logical_date="2026-01-01", parameters={}, selection={}, tasks=[task])
        attempt = project.store.start_attempt(run_id, task, 1, None, "x.ipynb")
        clock.now += seconds
        project.store.finish_attempt(attempt, AttemptState.SUCCEEDED)
        project.store.finish_run(run_id, "succeeded")
        clock.now += 60
    monkeypatch.setattr(store_module, "time", time)


def test_project_forecast_reads_recorded_histories_and_a_running_runs_eta(tmp_path, monkeypatch):
    pipeline = _diamond(tmp_path)
    project = Project(tmp_path)
    for task, secs in {"a": [10, 11, 12], "b": [100, 110, 120], "c": [30, 30, 30], "d": [20, 20, 22]}.items():
        record_history(project, monkeypatch, task, secs)
    now = time.time()
    project.store.create_run("live", trigger="manual", logical_date="2026-01-02", parameters={}, selection={},
                             tasks=list(pipeline.order))
    project.store.set_task_state("live", "a", TaskState.SUCCEEDED)
    project.store.start_attempt("live", "b", 1, None, "b.ipynb")  # running since now (this process is its runner)
    f = project.forecast("live", now=now + 30)
    assert f["tasks"]["b"] == {"median": 110.0, "p90": 118.0, "p95": 119.0, "samples": 3}
    run = f["run"]
    assert run["run_id"] == "live" and run["critical_path"] == ["b", "d"]
    assert run["eta"] == pytest.approx(now + 110 + 20, abs=1.0) and run["tasks"]["c"] == pytest.approx(now + 30 + 30, abs=1)
    # the panel's GET pipeline carries it: the run's ETA and each task's expected duration
    from nbflow.server import views

    body = views.pipeline("p", project.pipeline_state("live"), lambda p: p, lambda p: False)
    tasks = {t["name"]: t for t in body["tasks"]}
    assert body["run"]["eta"]["critical_path"] == ["b", "d"] and body["run"]["eta"]["eta"] > now
    assert tasks["d"]["expected"]["median"] == 20.0 and tasks["d"]["expected_end"] > tasks["b"]["expected_end"]


# alerts: texts, and the service on a real store with fake targets

def test_an_alert_says_project_run_task_status_error_duration_trigger_and_the_command():
    a = Alert("task_failed", "sales", "task clean failed", run_id="r1", task="clean", status="failed after 2 attempts",
              error="cell 3: KeyError: 'price'", duration=12.3, trigger="schedule:nightly")
    assert a.title == "[CRITICAL] sales: task clean failed"
    assert a.body.splitlines() == ["project: sales", "run: r1 (trigger schedule:nightly)", "task: clean",
                                   "status: failed after 2 attempts", "error: cell 3: KeyError: 'price'", "duration: 12 s",
                                   "more: nbflow show r1"]
    assert human(14 * 60) == "14 min" and human(4.2) == "4.2 s" and human(9000) == "2.5 h"


class FakeTarget:
    """A target that fails its first `fails` attempts, then accepts; records what it got."""

    def __init__(self, shown: str, fails: int = 0) -> None:
        self.shown, self.fails, self.got = shown, fails, []
        self.gate = threading.Event()
        self.gate.set()

    def send(self, alert, timeout):
        self.gate.wait(10)
        self.got.append(alert)
        if len(self.got) <= self.fails:
            return "connection refused"
        return None


def service(tmp_path: Path, targets: dict[str, FakeTarget], **settings):
    store = Store(str(tmp_path / "nbflow.db"), "p", str(tmp_path))
    routes = {Severity.CRITICAL: ("crit",), Severity.WARNING: ("warn",), Severity.INFO: ("info",)}
    cfg = AlertSettings(targets={s: tuple(t for t in ts if t in targets) for s, ts in routes.items()},
                        retry_delay=0.01, **settings)
    return AlertService(store, "p", str(tmp_path), cfg, make=lambda spec, root: targets[spec]), store


def test_one_alert_per_task_per_failure_streak_then_one_recovered(tmp_path):
    crit, info = FakeTarget("crit"), FakeTarget("info")
    alerts, store = service(tmp_path, {"crit": crit, "info": info})
    for run in ("r1", "r2", "r3"):
        alerts.raise_(Alert("task_failed", "p", "task t failed", run_id=run, task="t", opens="task:t"))
    alerts.raise_(Alert("recovered", "p", "task t recovered", run_id="r4", task="t", closes="task:t"))
    alerts.raise_(Alert("recovered", "p", "task u recovered", run_id="r4", task="u", closes="task:u"))  # never failed
    assert alerts.flush(10)
    assert [a["run_id"] for a in crit.got] == ["r1"]
    [recovered] = info.got
    assert recovered["event"] == "recovered" and "after 3 failed runs since" in recovered["body"] and "first: run r1" in recovered["body"]
    rows = store.alerts()
    assert [(r.event, r.outcome) for r in rows] == [("recovered", "routed"), ("task_failed", "grouped"),
                                                   ("task_failed", "grouped"), ("task_failed", "routed")]
    assert rows[-1].deliveries[0].status == DeliveryState.SENT and store.open_streaks() == []
    alerts.close()
    store.close()


def test_a_failing_target_is_retried_then_recorded_failed(tmp_path):
    down = FakeTarget("crit", fails=99)
    alerts, store = service(tmp_path, {"crit": down}, retries=2)
    alerts.raise_(Alert("task_failed", "p", "task t failed", run_id="r1", task="t"))
    assert alerts.flush(10)
    [d] = store.alerts()[0].deliveries
    assert (d.status, d.attempts, d.error) == (DeliveryState.FAILED, 3, "connection refused") and len(down.got) == 3
    alerts.close()
    store.close()


def test_alerts_over_the_rate_limit_are_recorded_not_sent(tmp_path):
    crit = FakeTarget("crit")
    info = FakeTarget("info")
    alerts, store = service(tmp_path, {"crit": crit, "info": info}, rate_limit=2)
    for i in range(3):
        alerts.raise_(Alert("run_succeeded", "p", "run succeeded", run_id=f"r{i}"))  # a chatty info...
    for i in range(4):
        alerts.raise_(Alert("task_failed", "p", f"task t{i} failed", run_id="r1", task=f"t{i}"))
    assert alerts.flush(10)
    assert len(info.got) == 2 and len(crit.got) == 2  # ...does not use up the criticals' budget
    assert [r.outcome for r in store.alerts() if r.severity == "critical"] == ["rate_limited", "rate_limited", "routed", "routed"]
    alerts.close()
    store.close()


def test_flush_is_bounded_and_a_delivery_left_behind_stays_pending(tmp_path):
    slow = FakeTarget("crit")
    slow.gate.clear()  # the target hangs until released
    alerts, store = service(tmp_path, {"crit": slow})
    started = time.monotonic()
    alerts.raise_(Alert("task_failed", "p", "task t failed", run_id="r1", task="t"))
    assert alerts.flush(0.5) is False and time.monotonic() - started < 3
    assert alerts.close(0.1) is False
    assert store.alerts()[0].deliveries[0].status == DeliveryState.PENDING
    slow.gate.set()
    store.close()


def test_the_operations_migration_is_the_last_one(tmp_path):
    with Store(str(tmp_path / "s.db")) as s:
        assert s.schema_version == len(migrations.MIGRATIONS)
        assert s.open_streak("task:t", "r1", 1.0) == 1 and s.open_streak("task:t", "r2", 2.0) == 2
        assert s.close_streak("task:t")["failures"] == 2 and s.close_streak("task:t") is None


def test_scheduler_events_raise_lease_lost_abandoned_and_skipped_alerts(tmp_path):
    from .webhook import webhook

    write_notebook(tmp_path / "t.ipynb", ["x = 1"])
    with webhook() as hook:
        url = hook.url("json")
        (tmp_path / "nbflow.toml").write_text(f'[alerts]\ncritical = ["{url}/crit"]\nwarning = ["{url}/warn"]\n')
        with Project(tmp_path) as project:
            scheduler = project.scheduler()
            scheduler.emit("slot_skipped", {"schedule": "nightly", "run_date": "2026-01-02", "reason": "overlap = \"skip\""})
            scheduler.emit("lease_lost", {"owner": "x", "running": 1})
            scheduler.emit("recovered", {"schedule": "nightly", "run_date": "2026-01-01", "action": "resuming its run"})
            scheduler.emit("slot_fired", {"schedule": "nightly", "run_date": "2026-01-03", "late": 0.0})  # no alert
            assert project.alert_service().flush(10)
        [skipped] = hook.received("/warn")
        assert skipped["title"].endswith("slot 2026-01-02 of schedule nightly skipped")
        assert "trigger: schedule:nightly" in skipped["message"]
        crit = sorted(p["title"].split(": ", 1)[1] for p in hook.received("/crit"))  # delivered in parallel: any order
        assert crit == ["slot 2026-01-01 of schedule nightly was abandoned by a stopped scheduler",
                        "the scheduler lost the store's lease"]
