"""The `nbflow` command. Thin: each command opens the project, calls one Project method, prints the result."""
from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from . import console as out
from .errors import ConflictError, NbflowError
from .records import as_json

if TYPE_CHECKING:
    from .project import Project


def _project(directory: str) -> Project:
    from .project import Project

    return Project(directory)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an NbflowError or an OSError into a one-line message and exit code 2; Ctrl-C into exit 130; a failure of
    nbflow itself into one line naming the log that keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        signal.signal(signal.SIGTERM, _terminate)  # systemd, cron and `kill` stop a run as Ctrl-C does
        try:
            return fn(*args, **kwargs)
        except NbflowError as e:
            _fail(str(e), e.exit_code, kwargs.get("error_file"), conflict=isinstance(e, ConflictError))
        except OSError as e:
            where = f": {e.filename}" if e.filename else ""
            _fail(f"{e.strerror or e}{where}. Fix: check that the path exists and that you may write there", 2,
                  kwargs.get("error_file"))
        except KeyboardInterrupt:
            out.err_console.print("interrupted. A run that had started is recorded as cancelled: "
                                  "continue it with `nbflow resume RUN` (see `nbflow runs`)")
            sys.exit(130)
        except Exception as e:  # noqa: BLE001 - a bug in nbflow: one line here, the traceback in the log
            log_path = _internal_log()
            logging.getLogger("nbflow.cli").exception("nbflow %s failed", fn.__name__)
            _fail(f"nbflow failed unexpectedly ({type(e).__name__}: {e}). This is a bug in nbflow; its traceback is in "
                  f"{log_path}", 2, kwargs.get("error_file"))

    return wrapper


def _fail(message: str, code: int, error_file: str | None, conflict: bool = False) -> None:
    """Print the one-line error; the Jupyter server's runner also gets it in its error file."""
    out.err_console.print(f"[red]error:[/] {out.escape(message)}")
    if error_file:
        try:
            with open(error_file, "w", encoding="utf-8") as f:
                json.dump({"message": message, "exit_code": code, "conflict": conflict}, f)
        except OSError:
            pass
    sys.exit(code)


def _internal_log() -> str:
    """Send nbflow's logger to a file in the user's state folder (made only now, when there is something to keep)."""
    folder = os.path.join(os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "nbflow")
    path = os.path.join(folder, "nbflow.log")
    try:
        os.makedirs(folder, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return "(nowhere: the log file could not be opened)"
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("nbflow").addHandler(handler)
    return path


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM stops a run exactly as Ctrl-C does: under asyncio.run, SIGINT cancels the run's task, which records the
    run cancelled and stops its kernels in order (a KeyboardInterrupt raised here, in whatever the loop was doing,
    left asyncio.run to cancel every task at once, and the notebooks' tasks ended in errors nobody retrieved)."""
    signal.raise_signal(signal.SIGINT)


def parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    """-p key=value: the value as JSON when it parses (numbers, true/false, lists), else as a string."""
    params: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise click.BadParameter(f"'{item}' is not key=value with a Python name as key (e.g. -p sample_size=500)", param_hint="-p")
        try:
            params[key.strip()] = json.loads(raw)
        except ValueError:
            params[key.strip()] = raw
    return params


project_dir = click.argument("directory", required=False, default=".", type=click.Path(file_okay=False))
project_opt = click.option("-C", "--project", "directory", default=".", show_default=True, type=click.Path(file_okay=False),
                           help="The project folder (holding nbflow.toml, or the notebooks).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nbflow")
def main() -> None:
    """nbflow: run a folder of Jupyter notebooks as a pipeline."""


@main.command()
@project_dir
@click.option("--json", "json_out", is_flag=True, help="Print the pipeline as JSON.")
@handle_errors
def compile(directory: str, json_out: bool) -> None:
    """Read the notebooks, build and validate the DAG; print tasks, edges and an order. Runs nothing."""
    project = _project(directory)
    pipeline = project.compile()
    for w in project.input_warnings(pipeline) + project.kernel_warnings(pipeline):  # a missing kernel: `run` would refuse
        out.err_console.print(f"[yellow]warning:[/] {out.escape(w)}")
    if json_out:
        click.echo(out.pipeline_json(pipeline))
    else:
        out.print_pipeline(pipeline)


@main.command()
@project_dir
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="dag.png, dag.pdf, dag.svg, dag.dot, ...: the extension is the format.")
@click.option("--run", "run_id", default=None, help="Colour the nodes by this run's task states.")
@click.option("--edge-labels", is_flag=True, help="Write each edge's reason on it (upstream tag, path data/x.csv).")
@handle_errors
def graph(directory: str, output: str, run_id: str | None, edge_labels: bool) -> None:
    """Draw the DAG in any format Graphviz writes (png, pdf, svg, ...; all but .dot need Graphviz's `dot` program)."""
    fmt = os.path.splitext(output)[1].lstrip(".").lower()
    if not fmt:
        raise NbflowError(f"cannot tell the format of '{output}'. Fix: name the file *.png, *.pdf, *.svg or *.dot")
    data = _project(directory).graph(fmt, run_id, edge_labels=edge_labels)
    with open(output, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    out.console.print(f"wrote {output}")


@main.command()
@project_dir
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="A run parameter (repeatable).")
@click.option("--only", multiple=True, metavar="TASK", help="Run only these tasks (repeatable or comma-separated).")
@click.option("--from", "start", multiple=True, metavar="TASK", help="Run this task and everything downstream of it.")
@click.option("--to", "end", multiple=True, metavar="TASK", help="Run this task and everything upstream of it.")
@click.option("--force", is_flag=True, help="Run every selected task, even when up to date.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Tasks run at once (default: `jobs` in nbflow.toml).")
@click.option("--dry-run", is_flag=True, help="Show what would run and why; execute nothing.")
@click.option("--wait", is_flag=True, help="If a running run holds data this run would write or read, wait for it to end "
                                          "(default: refuse, exit 2).")
@click.option("--no-alerts", is_flag=True, help="Raise no alert for this run ([alerts] in nbflow.toml).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None,
              help="Where tasks run: this machine, or a Dask cluster (default: `executor` in nbflow.toml, else local).")
@click.option("--dask-address", default=None, metavar="ADDR", help="The Dask scheduler to use (implies --executor dask).")
@click.option("--run-id", default=None, hidden=True, help="Use this run id (the Jupyter server picks it before starting the run).")
@click.option("--trigger", default="manual", hidden=True, help="What started the run, as recorded (manual, jupyter, ...).")
@click.option("--error-file", default=None, hidden=True, help="Write an error that stops the run to this file, as JSON.")
@handle_errors
def run(directory: str, params: tuple[str, ...], only: tuple[str, ...], start: tuple[str, ...], end: tuple[str, ...],
        force: bool, jobs: int | None, dry_run: bool, wait: bool, no_alerts: bool, executor: str | None,
        dask_address: str | None, run_id: str | None, trigger: str, error_file: str | None) -> None:
    """Run the pipeline: each notebook in a fresh kernel, skipping tasks that are up to date."""
    project = _project(directory)
    parameters = parse_params(params)
    if dry_run:
        pipeline = project.compile()
        for w in project.parameter_warnings(pipeline, parameters) + project.input_warnings(pipeline, parameters):
            out.err_console.print(f"[yellow]warning:[/] {out.escape(w)}")
        out.print_plan(project.dry_run(parameters, only=only, start=start, end=end, force=force))
        return
    with out.RunReporter() as reporter:
        summary = project.run(parameters, only=only, start=start, end=end, force=force, jobs=jobs, on_event=reporter,
                              trigger=trigger, run_id=run_id, wait=wait, alerts=not no_alerts,
                              executor=executor or ("dask" if dask_address else None), dask_address=dask_address)
    out.print_summary(summary)
    sys.exit(0 if summary.ok else 1)


@main.command()
@click.argument("run_id")
@project_opt
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Tasks run at once.")
@click.option("--no-alerts", is_flag=True, help="Raise no alert for this run.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None, help="Where tasks run (default: as in nbflow.toml).")
@click.option("--dask-address", default=None, metavar="ADDR", help="The Dask scheduler to use (implies --executor dask).")
@handle_errors
def resume(run_id: str, directory: str, jobs: int | None, no_alerts: bool, executor: str | None, dask_address: str | None) -> None:
    """Re-run what failed or never finished in RUN_ID, keeping what succeeded."""
    project = _project(directory)
    with out.RunReporter() as reporter:
        summary = project.resume(run_id, jobs=jobs, on_event=reporter, alerts=not no_alerts,
                                 executor=executor or ("dask" if dask_address else None), dask_address=dask_address)
    out.print_summary(summary)
    sys.exit(0 if summary.ok else 1)


@main.command()
@project_opt
@click.option("--limit", "-n", default=20, show_default=True, help="How many runs to list, newest first.")
@click.option("--all-projects", is_flag=True, help="Every project's runs in this project's store (when it is shared).")
@click.option("--all", "show_all", is_flag=True, help="Also the runs that ran nothing (every task up to date).")
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@handle_errors
def runs(directory: str, limit: int, all_projects: bool, show_all: bool, json_out: bool) -> None:
    """List recent runs, with the parameters that differ between them (runs where nothing ran: with --all)."""
    rows = _project(directory).runs(limit=limit, all_projects=all_projects, include_noop=show_all)
    _print(rows, json_out, lambda: out.print_runs(rows, all_projects))


@main.command()
@click.argument("run_id", required=False)
@project_opt
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@handle_errors
def show(run_id: str | None, directory: str, json_out: bool) -> None:
    """Show one run (default: the latest): its tasks, attempts, errors and executed notebooks."""
    detail = _project(directory).show(run_id)
    _print(detail, json_out, lambda: out.print_run(detail))


@main.command()
@click.argument("run_and_task", nargs=-1, required=True, metavar="[RUN] TASK")
@project_opt
@click.option("--attempt", type=int, default=None, help="Attempt number (default: the last).")
@handle_errors
def logs(run_and_task: tuple[str, ...], directory: str, attempt: int | None) -> None:
    """Print a task's output (streams and displayed values) and error, in RUN or the latest run where it ran."""
    if len(run_and_task) > 2:
        raise click.UsageError("give at most a run id and a task: nbflow logs [RUN] TASK")
    run_id, task = (None, run_and_task[0]) if len(run_and_task) == 1 else run_and_task
    out.print_logs(_project(directory).logs(run_id, task, attempt))


@main.command()
@click.argument("run_a")
@click.argument("run_b")
@project_opt
@click.option("--task", default=None, help="Compare this task's executed notebooks (default: every task that ran in both).")
@click.option("--json", "json_out", is_flag=True, help="Print JSON (the REST route runs/compare answers the same).")
@handle_errors
def diff(run_a: str, run_b: str, directory: str, task: str | None, json_out: bool) -> None:
    """What changed between two runs: parameters, code, task outcomes, data hashes, notebooks cell by cell."""
    found = _project(directory).diff(run_a, run_b, task)
    _print(found, json_out, lambda: out.print_diff(found))


@main.command()
@click.argument("run_id", required=False)
@project_opt
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="The HTML file to write (default: nbflow-report-RUN.html).")
@click.option("--open", "open_it", is_flag=True, help="Open it in the web browser.")
@handle_errors
def report(run_id: str | None, directory: str, output: str | None, open_it: bool) -> None:
    """Write one self-contained HTML report of a run (default: the latest where something ran), for someone without Jupyter."""
    path = _project(directory).report(run_id, output)
    out.console.print(f"wrote {out.rel(path)} ({os.path.getsize(path) / 1024:.0f} KB)")
    if open_it:
        import pathlib
        import webbrowser

        webbrowser.open(pathlib.Path(path).as_uri())


@main.command()
@click.argument("target")
@project_opt
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@handle_errors
def lineage(target: str, directory: str, json_out: bool) -> None:
    """Show which attempt wrote a file's current version and from which inputs, recursively (or a task's I/O)."""
    tree = _project(directory).lineage(target)
    _print(tree, json_out, lambda: out.print_lineage(tree))


@main.command()
@project_opt
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@handle_errors
def doctor(directory: str, json_out: bool) -> None:
    """Print versions, paths, installed kernels and known problems of this environment (for bug reports)."""
    info = _project(directory).diagnostics()
    click.echo(json.dumps(info, indent=2)) if json_out else out.print_diagnostics(info)


def _print(value: Any, json_out: bool, table: Callable[[], None]) -> None:
    """`--json`: the value (records included) as JSON; else the table."""
    if json_out:
        click.echo(json.dumps(as_json(value), indent=2, default=str))
    else:
        table()


@main.group()
def schedule() -> None:
    """Add, list, pause, resume and remove schedules (nbflow.toml's and the CLI's)."""


@schedule.command("add")
@click.argument("name")
@project_opt
@click.option("--cron", required=True, help="Cron expression: '0 2 * * *' (5 fields; a 6th is seconds).")
@click.option("--timezone", "--tz", "timezone", default="UTC", show_default=True, help="IANA time zone of the cron times.")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="A run parameter (repeatable).")
@click.option("--only", multiple=True, metavar="TASK", help="Run only these tasks (repeatable or comma-separated).")
@click.option("--catchup", type=click.Choice(["all", "latest", "none"]), default="latest", show_default=True,
              help="After downtime: run every missed slot, only the newest, or none.")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=1, show_default=True, help="Runs of this schedule at once.")
@click.option("--overlap", type=click.Choice(["queue", "skip"]), default="queue", show_default=True,
              help="A slot due while max-concurrent runs are active: queue it, or skip it (recorded).")
@click.option("--sla", default=None, metavar="DURATION", help="Each run must finish within this long of its slot (e.g. 45m).")
@click.option("--alert", type=click.Choice(["critical", "warning", "info", "off"]), default=None,
              help="Severity of this schedule's failure alerts (default: critical), or off.")
@handle_errors
def schedule_add(name: str, directory: str, cron: str, timezone: str, params: tuple[str, ...], only: tuple[str, ...],
                 catchup: str, max_concurrent: int, overlap: str, sla: str | None, alert: str | None) -> None:
    """Add a schedule to the store; its first slot is the first after now."""
    project = _project(directory)
    row = project.add_schedule(name, cron, timezone=timezone, parameters=parse_params(params), only=only, catchup=catchup,
                               max_concurrent=max_concurrent, overlap=overlap, sla=sla, alert=alert)
    out.console.print(f"added schedule {name}: next fire {row['next_fire']}")


@schedule.command("list")
@project_opt
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@handle_errors
def schedule_list(directory: str, json_out: bool) -> None:
    """List schedules with their next fire times, and sensors with their files."""
    project = _project(directory)
    rows, sensors, status = project.schedules(), project.sensors(), project.scheduler_status()
    if json_out:
        click.echo(json.dumps({"scheduler": status, "schedules": rows, "sensors": sensors}, indent=2, default=str))
        return
    out.print_schedules(rows, status)
    out.print_sensors(sensors)


@schedule.command("pause")
@click.argument("name")
@project_opt
@handle_errors
def schedule_pause(name: str, directory: str) -> None:
    """Stop firing a schedule (slots due while paused are not run later; backfill runs them)."""
    _project(directory).pause_schedule(name)
    out.console.print(f"paused schedule {name}")


@schedule.command("resume")
@click.argument("name")
@project_opt
@handle_errors
def schedule_resume(name: str, directory: str) -> None:
    """Fire a paused schedule again, from its next slot after now."""
    _project(directory).resume_schedule(name)
    out.console.print(f"resumed schedule {name}")


@schedule.command("remove")
@click.argument("name")
@project_opt
@handle_errors
def schedule_remove(name: str, directory: str) -> None:
    """Remove a schedule added with `nbflow schedule add` (its slot history stays)."""
    _project(directory).remove_schedule(name)
    out.console.print(f"removed schedule {name}")


@schedule.command("slots")
@click.argument("name", required=False)
@project_opt
@click.option("--limit", "-n", default=20, show_default=True, help="How many slots, newest first.")
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@handle_errors
def schedule_slots(name: str | None, directory: str, limit: int, json_out: bool) -> None:
    """Recorded slots (of one schedule): fired, queued, skipped and why, with their runs."""
    rows = _project(directory).slots(name, limit)
    click.echo(json.dumps(rows, indent=2, default=str)) if json_out else out.print_slots(rows)


@main.command()
@project_opt
@click.option("--standby/--no-standby", default=True, show_default=True,
              help="When another scheduler holds the store: wait and take over when it stops, or exit with an error.")
@click.option("--stop-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="On SIGTERM/SIGINT, seconds to let running runs finish before cancelling them.")
@handle_errors
def scheduler(directory: str, standby: bool, stop_timeout: float) -> None:
    """Run the scheduler in the foreground: fire schedules, catch up missed slots, watch sensors."""
    _project(directory).run_scheduler(standby=standby, stop_timeout=stop_timeout, on_event=out.SchedulerReporter())


@main.command()
@project_opt
@click.option("--start", required=True, help="First date (YYYY-MM-DD or YYYY-MM-DDTHH:MM), in the schedule's time zone.")
@click.option("--end", required=True, help="Last date, inclusive (a date means the whole day); never past now.")
@click.option("--schedule", "schedule_name", default=None, help="Use this schedule's slots, parameters and tasks (default: a slot a day).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=2, show_default=True, help="Slots run at once.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Tasks at once within each run.")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="A run parameter (repeatable).")
@click.option("--only", multiple=True, metavar="TASK", help="Run only these tasks (repeatable or comma-separated).")
@click.option("--no-alerts", is_flag=True, help="Raise no alert for these runs.")
@handle_errors
def backfill(directory: str, start: str, end: str, schedule_name: str | None, concurrency: int, jobs: int | None,
             params: tuple[str, ...], only: tuple[str, ...], no_alerts: bool) -> None:
    """One run per slot between two dates with its run_date; slots that already succeeded are skipped."""
    project = _project(directory)
    with out.BackfillReporter() as reporter:
        summary = project.backfill(start, end, schedule=schedule_name, concurrency=concurrency, jobs=jobs,
                                   parameters=parse_params(params), only=only, on_event=reporter, alerts=not no_alerts)
    out.print_backfill(summary)
    sys.exit(0 if summary.ok else 1)


@main.command()
@project_opt
@click.option("--limit", "-n", default=30, show_default=True, help="How many alerts, newest first.")
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@handle_errors
def alerts(directory: str, limit: int, json_out: bool) -> None:
    """List recent alerts and their deliveries: sent, failed (with the error), pending, grouped or rate-limited."""
    rows = _project(directory).alerts(limit)
    _print(rows, json_out, lambda: out.print_alerts(rows))


@main.group(invoke_without_command=True)
@project_opt
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def breakers(ctx: click.Context, directory: str, json_out: bool) -> None:
    """List circuit breakers (one per `uses:NAME` tag): state, failures, opened at, next probe."""
    if ctx.invoked_subcommand is not None:
        return
    rows = _project(directory).breakers()
    _print(rows, json_out, lambda: out.print_breakers(rows))


@breakers.command("reset")
@click.argument("name")
@project_opt
@handle_errors
def breakers_reset(name: str, directory: str) -> None:
    """Close a circuit breaker by hand: its failures are forgotten and its tasks run again."""
    row = _project(directory).reset_breaker(name)
    out.console.print(f"circuit breaker {name}: {row['state']}")


if __name__ == "__main__":  # pragma: no cover
    main()
