"""nbflow's Jupyter server extension: the REST API under /nbflow/api/ that the JupyterLab panel uses.

Enabled by the jupyter-config file that `pip install` puts in etc/jupyter/jupyter_server_config.d/.
The API is documented in docs/rest-api.md.
"""
from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

from .base import NbflowHandler
from .changes import ChangesHandler
from .dependencies import DependenciesHandler
from .notebooks import NotebookTagsHandler
from .ops import AlertsHandler, BreakerResetHandler, BreakersHandler
from .review import DatasetsHandler, NotebookHandler, ParametersHandler, TaskHistoryHandler, TimelineHandler
from .routes import AttemptIOHandler, CompareHandler, LineageHandler, LogHandler, PipelineHandler, RunHandler
from .runs import CancelHandler, DryRunHandler, ResumeHandler, RunsHandler
from .schedules import BackfillHandler, CronHandler, ScheduleActionHandler, SchedulesHandler, SlotsHandler
from .state import ServerState

API = "nbflow/api"
_RUN = r"(?P<run_id>[^/]+)"

# Every route the extension registers; tests call each one unauthenticated and expect a refusal.
ROUTES: list[tuple[str, type[NbflowHandler]]] = [
    ("pipeline", PipelineHandler),
    ("changes", ChangesHandler),
    ("runs", RunsHandler),
    ("runs/compare", CompareHandler),  # before runs/<id>, which would take "compare" for a run id
    (f"runs/{_RUN}", RunHandler),
    (f"runs/{_RUN}/cancel", CancelHandler),
    (f"runs/{_RUN}/resume", ResumeHandler),
    (f"runs/{_RUN}/timeline", TimelineHandler),
    (f"runs/{_RUN}/tasks/(?P<task>.+)/attempts/(?P<attempt>[0-9]+)/log", LogHandler),
    (f"runs/{_RUN}/tasks/(?P<task>.+)/attempts/(?P<attempt>[0-9]+)/io", AttemptIOHandler),
    ("dry-run", DryRunHandler),
    ("parameters", ParametersHandler),
    ("notebook", NotebookHandler),
    ("datasets", DatasetsHandler),
    ("tasks/(?P<task>.+)/history", TaskHistoryHandler),
    ("lineage", LineageHandler),
    ("schedules", SchedulesHandler),
    ("schedules/(?P<name>[^/]+)/slots", SlotsHandler),
    ("schedules/(?P<name>[^/]+)/(?P<action>pause|resume|remove)", ScheduleActionHandler),
    ("cron", CronHandler),
    ("backfill", BackfillHandler),
    ("notebook-tags", NotebookTagsHandler),
    ("dependencies", DependenciesHandler),
    ("alerts", AlertsHandler),
    ("breakers", BreakersHandler),
    ("breakers/(?P<name>[^/]+)/reset", BreakerResetHandler),
]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbflow.server"}]


def handlers(base_url: str) -> list[tuple[str, type[NbflowHandler]]]:
    """The (URL pattern, handler) pairs under `base_url`."""
    return [(url_path_join(base_url, API, pattern), handler) for pattern, handler in ROUTES]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the API's handlers with the running server."""
    web_app = serverapp.web_app
    contents = getattr(serverapp, "contents_manager", None)
    web_app.settings["nbflow"] = ServerState(root_dir=serverapp.root_dir,
                                             allow_hidden=bool(getattr(contents, "allow_hidden", False)))
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))

    serverapp.log.info("nbflow: REST API at %s", url_path_join(web_app.settings["base_url"], API))


def _unload_jupyter_server_extension(serverapp: Any) -> None:
    """Close the stores the extension opened (runs it started keep going: they are separate processes)."""
    state = serverapp.web_app.settings.get("nbflow")
    if state is not None:
        state.close()
