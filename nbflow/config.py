"""Read the project settings from nbflow.toml or [tool.nbflow] in pyproject.toml."""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .errors import ConfigError
from .model import KERNEL_STARTS, Config, DaskSettings, Policy
from .resources import check_named, size_setting

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP_FIELDS = {"name", "notebooks", "include", "exclude", "store", "artifacts", "jobs", "parameters", "defaults", "tasks", "pools",
              "schedules", "sensors", "alerts", "breakers", "forecast", "openlineage", "executor", "dask", "cpus", "gpus",
              "resources", "kernel_start", "preload"}
KERNEL_START_ENV = "NBFLOW_KERNEL_START"  # overrides kernel_start (CI runs the run tests both ways)
DASK_FIELDS = {"address", "local_workers", "threads", "wait_for_workers"}
EXECUTORS = ("local", "dask")
POLICY_FIELDS = {f.name for f in fields(Policy)}
# Notebook files: .ipynb, and .py/.md files that are jupytext notebooks (a plain module or README is not a task).
DEFAULT_INCLUDE = ("**/*.ipynb", "**/*.py", "**/*.md")
OPS_TASK_FIELDS = {"alert", "sla"}  # [tasks."x"] alert/sla: validated by nbflow.ops.settings, not execution policy
# Always left out: JupyterLab's checkpoints and untitled notebooks (new, unsaved work is not a task) and nbflow's own.
DEFAULT_EXCLUDE = ("**/.ipynb_checkpoints/**", "**/*-checkpoint.ipynb", "**/Untitled*.ipynb", ".nbflow/**", "**/.nbflow/**")


def find_settings(root: str) -> tuple[str | None, dict[str, Any]]:
    """The settings table and the file it came from; ({} , None) when the project has none."""
    toml = os.path.join(root, "nbflow.toml")
    if os.path.exists(toml):
        return toml, _read(toml)
    pyproject = os.path.join(root, "pyproject.toml")
    if os.path.exists(pyproject):
        table = _read(pyproject).get("tool", {}).get("nbflow")
        if isinstance(table, dict):
            return pyproject, table
    return None, {}


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return dict(tomllib.load(f))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "-", f"not valid TOML ({e})", "fix the syntax at that line") from None


def load_config(root: str) -> Config:
    """Settings for the project at `root`, with defaults filled in and paths made absolute."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise ConfigError(root, "project", "no such folder", "pass the folder that holds your notebooks or nbflow.toml")
    source, raw = find_settings(root)
    where = source or os.path.join(root, "nbflow.toml")
    unknown = set(raw) - TOP_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(where, name, "unknown field", f"use one of: {', '.join(sorted(TOP_FIELDS))}")
    notebooks = _abs(root, _get(raw, "notebooks", str, ".", where))
    if not os.path.isdir(notebooks):
        raise ConfigError(where, "notebooks", f"folder '{notebooks}' does not exist", "point it at the folder that holds your notebooks")
    jobs = _get(raw, "jobs", int, os.cpu_count() or 2, where)
    if jobs < 1:
        raise ConfigError(where, "jobs", "must be at least 1", "set e.g. jobs = 4")
    tasks = dict(_get(raw, "tasks", dict, {}, where))
    for name, table in tasks.items():
        if not isinstance(table, dict):
            raise ConfigError(where, f"tasks.{name}", "must be a table", f'write [tasks."{name}"] with policy fields')
        ops = {k: v for k, v in table.items() if k in OPS_TASK_FIELDS}  # alert/sla: nbflow.ops.settings checks them
        tasks[name] = {**_check_policy({k: v for k, v in table.items() if k not in OPS_TASK_FIELDS}, where, f"tasks.{name}"),
                       **ops}
    defaults_raw = _get(raw, "defaults", dict, {}, where)
    pools = _get(raw, "pools", dict, {}, where)
    for name, size in pools.items():
        if not isinstance(size, int) or size < 1:
            raise ConfigError(where, f"pools.{name}", "must be a whole number >= 1", f"write {name} = 2")
    kernel_start = _kernel_start(raw, where)
    preload = _get(raw, "preload", list, [], where)
    for module in preload:
        if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
            raise ConfigError(where, "preload", f"{module!r} is not a module name", 'write e.g. preload = ["pandas", "numpy"]')
    name = _get(raw, "name", str, os.path.basename(root) or "project", where).strip()
    if not name or any(c in name for c in "/\\\n"):
        raise ConfigError(where, "name", f"{name!r} cannot name a project", 'write e.g. name = "churn" (no slashes)')
    cpus = _get(raw, "cpus", int, 0, where)
    if cpus < 0:
        raise ConfigError(where, "cpus", "must be at least 1", "set e.g. cpus = 8 (the CPUs local runs may reserve), or leave it out")
    named = check_named(_get(raw, "resources", dict, {}, where))
    if isinstance(named, str):
        raise ConfigError(where, "resources", named, "write e.g. resources = {license = 2}")
    executor = _get(raw, "executor", str, "local", where)
    if executor not in EXECUTORS:
        raise ConfigError(where, "executor", f"unknown executor {executor!r}", 'write executor = "local" or executor = "dask"')
    return Config(
        root=root,
        source=source,
        name=name,
        notebooks=notebooks,
        include=tuple(_get(raw, "include", list, list(DEFAULT_INCLUDE), where)),
        exclude=tuple(_get(raw, "exclude", list, [], where)) + DEFAULT_EXCLUDE,
        store=_abs(root, _get(raw, "store", str, ".nbflow/nbflow.db", where)),
        artifacts=_abs(root, _get(raw, "artifacts", str, "nbflow-runs", where)),
        jobs=jobs,
        parameters=_get(raw, "parameters", dict, {}, where),
        defaults=policy_from(Policy(), _check_policy(defaults_raw, where, "defaults")),
        tasks=tasks,
        pools=pools,
        schedules=_get(raw, "schedules", dict, {}, where),
        sensors=_get(raw, "sensors", dict, {}, where),
        alerts=_get(raw, "alerts", dict, {}, where),
        breakers=_get(raw, "breakers", dict, {}, where),
        forecast=_get(raw, "forecast", dict, {}, where),
        openlineage=_get(raw, "openlineage", dict, {}, where),
        executor=executor,
        dask=_dask(_get(raw, "dask", dict, {}, where), where),
        cpus=cpus,
        gpus=_gpus(raw, where),
        resources=dict(named),
        kernel_start=kernel_start,
        preload=tuple(preload),
    )


def _gpus(raw: Mapping[str, Any], where: str) -> tuple[str, ...] | None:
    """`gpus = [0, 1]`: the GPU ids local runs hand out (None when not set: detected)."""
    if "gpus" not in raw:
        return None
    value = raw["gpus"]
    if not isinstance(value, list) or not all(isinstance(g, (int, str)) and not isinstance(g, bool) for g in value):
        raise ConfigError(where, "gpus", f"expected a list of GPU ids, got {value!r}", "write e.g. gpus = [0, 1] (or [] for none)")
    ids = tuple(str(g) for g in value)
    if len(set(ids)) != len(ids):
        raise ConfigError(where, "gpus", f"{value!r} names a GPU twice", "list each GPU id once")
    return ids


def _dask(table: Mapping[str, Any], where: str) -> DaskSettings:
    unknown = set(table) - DASK_FIELDS
    if unknown:
        raise ConfigError(where, f"dask.{sorted(unknown)[0]}", "unknown field", f"use one of: {', '.join(sorted(DASK_FIELDS))}")
    address = table.get("address")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ConfigError(where, "dask.address", f"{address!r} is not an address", 'write e.g. address = "tcp://scheduler:8786"')
    for key in ("local_workers", "threads"):
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(where, f"dask.{key}", f"{value!r} is not a whole number >= 1", f"write e.g. {key} = 2")
    wait = table.get("wait_for_workers", 30.0)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
        raise ConfigError(where, "dask.wait_for_workers", f"{wait!r} is not a number of seconds", "write e.g. wait_for_workers = 60")
    if address and table.get("local_workers"):
        raise ConfigError(where, "dask", "sets both address and local_workers",
                          "keep address (an existing cluster) or local_workers (a cluster started for each run)")
    return DaskSettings(address=address, local_workers=table.get("local_workers"), threads=table.get("threads") or 1,
                        wait_for_workers=float(wait))


def _kernel_start(raw: Mapping[str, Any], where: str) -> str:
    """`kernel_start` from the environment (NBFLOW_KERNEL_START), else from the settings, else fork."""
    from_env = os.environ.get(KERNEL_START_ENV, "").strip().lower()
    if from_env:
        if from_env not in KERNEL_STARTS:
            raise ConfigError("environment", KERNEL_START_ENV, f"{from_env!r} is not a way to start kernels",
                              "set it to fork or spawn, or unset it")
        return from_env
    value = _get(raw, "kernel_start", str, "fork", where)
    if value not in KERNEL_STARTS:
        raise ConfigError(where, "kernel_start", f"{value!r} is not a way to start kernels", 'write kernel_start = "fork" or "spawn"')
    return str(value)


def _abs(root: str, path: str) -> str:
    return os.path.normpath(os.path.join(root, os.path.expanduser(path)))


def _get(raw: Mapping[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    value = raw.get(key, default)
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise ConfigError(where, key, f"expected {kind.__name__}, got {type(value).__name__} {value!r}",
                          f"see the README's configuration section for '{key}'")
    return value


_POSITIVE = ("timeout", "cell_timeout", "retry_delay", "retry_max_delay")
_POLICY_TYPES: dict[str, tuple[type, ...]] = {
    "retries": (int,), "retry_delay": (int, float), "retry_max_delay": (int, float),
    "timeout": (int, float), "cell_timeout": (int, float), "kernel": (str,), "pool": (str,),
    "cpus": (int,), "memory": (str, int), "gpus": (int,), "resources": (dict,),
}


def _check_policy(table: Mapping[str, Any], where: str, prefix: str) -> Mapping[str, Any]:
    """The table's policy fields, checked, with `memory` in bytes and `resources` as sorted pairs."""
    out = dict(table)
    for key, value in table.items():
        if key not in POLICY_FIELDS:
            raise ConfigError(where, f"{prefix}.{key}", "unknown policy field", f"use one of: {', '.join(sorted(POLICY_FIELDS))}")
        if isinstance(value, bool) or not isinstance(value, _POLICY_TYPES[key]):
            raise ConfigError(where, f"{prefix}.{key}", f"wrong type {type(value).__name__}", f"expected {_POLICY_TYPES[key][0].__name__}")
        number: Any = value
        if (key in ("retries", "cpus", "gpus") and number < 0) or (key in _POSITIVE and number <= 0):
            raise ConfigError(where, f"{prefix}.{key}", f"{value!r} is out of range", "use a positive number")
        if key == "memory":
            size = size_setting(value)
            if isinstance(size, str):
                raise ConfigError(where, f"{prefix}.memory", size, "sizes use binary units: 512M is 512 MiB")
            out["memory"] = size
        if key == "resources":
            named = check_named(value)
            if isinstance(named, str):
                raise ConfigError(where, f"{prefix}.resources", named, "write e.g. resources = {license = 1}")
            out["resources"] = named
    return out


def policy_from(base: Policy, overrides: Mapping[str, Any]) -> Policy:
    """A copy of `base` with `overrides` applied; named resources are merged name by name."""
    fields_ = {k: v for k, v in overrides.items() if k in POLICY_FIELDS}
    if "resources" in fields_:
        fields_["resources"] = tuple(sorted({**dict(base.resources), **dict(fields_["resources"])}.items()))
    return Policy(**{**base.__dict__, **fields_})
