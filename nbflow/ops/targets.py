"""Where alerts go: an Apprise URL (Slack, Teams, email, ntfy, json:// webhooks, ~100 services) or `command:PATH`
(run with the alert as JSON on stdin and in NBFLOW_ALERT_* variables). One attempt per `send`; the delivery worker
retries. Apprise is imported only when an alert is checked or sent."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ConfigError
from ..states import Severity

COMMAND = "command:"
_NOTIFY_TYPE = {Severity.CRITICAL: "failure", Severity.WARNING: "warning", Severity.INFO: "info"}


class Target(Protocol):
    shown: str  # the target as people may see it: secrets masked

    def send(self, alert: Mapping[str, Any], timeout: float) -> str | None:
        """Deliver once: None when it was accepted, else why not (one line)."""
        ...


@dataclass
class AppriseTarget:
    url: str
    shown: str

    def send(self, alert: Mapping[str, Any], timeout: float) -> str | None:
        import apprise

        a = apprise.Apprise()
        if not a.add(self.url):
            return f"Apprise cannot use the URL {self.shown}"
        result = a.notify(body=alert["body"], title=alert["title"], notify_type=_NOTIFY_TYPE[Severity(alert["severity"])],
                          timeout=timeout)
        if result:
            return None
        said = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        return "; ".join(said[-2:]) or f"Apprise could not deliver to {self.shown} ({result.status.name.lower()})"


@dataclass
class CommandTarget:
    """`command:./page-oncall.sh --team data`: run in the project folder, alert JSON on stdin, NBFLOW_ALERT_* in env."""

    argv: list[str]
    shown: str
    cwd: str

    def send(self, alert: Mapping[str, Any], timeout: float) -> str | None:
        env = {**os.environ, **alert_env(alert)}
        try:
            done = subprocess.run(self.argv, input=json.dumps(alert, default=str), capture_output=True, text=True,
                                  cwd=self.cwd, env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return f"{self.shown} ran longer than {timeout:g} s"
        except OSError as e:
            return f"{self.shown} could not start: {e.strerror or e}"
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()
            return f"{self.shown} exited with {done.returncode}" + (f": {last[-1][:300]}" if last else "")
        return None


def alert_env(alert: Mapping[str, Any]) -> dict[str, str]:
    """The alert's fields as NBFLOW_ALERT_<FIELD> variables (empty string for none)."""
    env = {f"NBFLOW_ALERT_{k.upper()}": "" if v is None else str(v) for k, v in alert.items() if not isinstance(v, (dict, list))}
    env["NBFLOW_ALERT_JSON"] = json.dumps(alert, default=str)
    return env


def make_target(spec: str, root: str) -> Target:
    """The target a configured string names (not checked: `check_targets` does that before a run)."""
    if spec.startswith(COMMAND):
        argv = shlex.split(spec[len(COMMAND):])
        if argv and not os.path.isabs(argv[0]) and os.sep in argv[0]:
            argv[0] = os.path.normpath(os.path.join(root, argv[0]))
        return CommandTarget(argv, spec, root)
    return AppriseTarget(spec, masked(spec))


def masked(url: str) -> str:
    """An Apprise URL with its secrets masked, without the query string Apprise adds (tokens stay hidden)."""
    import apprise

    a = apprise.Apprise()
    if not a.add(url):
        return url.split("://", 1)[0] + "://..."
    plugin: Any = a[0]
    return str(plugin.url(privacy=True)).split("?", 1)[0]


def check_targets(targets: Mapping[Severity, tuple[str, ...]], where: str, root: str) -> None:
    """ConfigError for a target that cannot work: an Apprise URL Apprise does not know, a command not found."""
    urls = [(sev, i, t) for sev, ts in targets.items() for i, t in enumerate(ts)]
    if not urls:
        return
    for sev, i, t in urls:
        field = f"alerts.{sev.value}[{i}]"
        if t.startswith(COMMAND):
            argv = shlex.split(t[len(COMMAND):])
            if not argv:
                raise ConfigError(where, field, "'command:' names no program", 'Fix: write "command:./page-oncall.sh"')
            target = make_target(t, root)
            assert isinstance(target, CommandTarget)
            path = target.argv[0]
            if os.sep in path and not os.access(path, os.X_OK):
                raise ConfigError(where, field, f"{path} is not an executable file", f"Fix: create it, or chmod +x {path}")
            continue
        import apprise

        if not apprise.Apprise().add(t):
            scheme = t.split("://", 1)[0] if "://" in t else t
            raise ConfigError(where, field, f"'{scheme}://...' is not a URL Apprise can use",
                              "Fix: write an Apprise URL such as slack://TokenA/TokenB/TokenC, mailto://user:pass@example.com, "
                              "json://host/path (see https://github.com/caronc/apprise/wiki), or command:./script.sh")
