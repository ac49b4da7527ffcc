"""What a task asks for (CPUs, memory, GPUs, named resources), spelled the same in tags and nbflow.toml. Pure.

`cpus:2`, `memory:4G`, `gpus:1`, `resources:license=1` on a cell; `cpus = 2`, `memory = "4G"`, `gpus = 1`,
`resources = {license = 1}` under [defaults] or [tasks."name"]. Sizes use binary units, as Docker and Slurm do:
`512M` is 512 MiB.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
RESOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
RESERVED = ("CPU", "GPU", "MEMORY")  # the Dask resource names nbflow's own requests become


def parse_size(text: str) -> int | None:
    """Bytes in `512M`, `4G`, `1.5GiB`, `100MB`, `1048576`; None when it does not parse or is not positive."""
    m = _SIZE.match(text)
    if not m:
        return None
    size = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    return size if size > 0 else None


def format_size(size: int | float | None) -> str:
    """512 MiB, 4 GiB, 1.5 GiB: sizes in messages."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 or value == int(value) else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class Request:
    """What one task needs while it runs. Nothing asked (all zero) is nothing reserved."""

    cpus: int = 0
    memory: int | None = None  # bytes: the kernel's limit
    gpus: int = 0
    named: tuple[tuple[str, float], ...] = ()  # resources:NAME=N, sorted by name

    @property
    def empty(self) -> bool:
        return not (self.cpus or self.memory or self.gpus or self.named)

    def dask(self) -> dict[str, float]:
        """As Dask worker resources: CPU, GPU, MEMORY (bytes) and the named ones."""
        out: dict[str, float] = dict(self.named)
        if self.cpus:
            out["CPU"] = self.cpus
        if self.gpus:
            out["GPU"] = self.gpus
        if self.memory:
            out["MEMORY"] = self.memory
        return out

    def describe(self) -> str:
        """`cpus:2 memory:4 GiB gpus:1 license=1`, for messages."""
        parts = ([f"cpus:{self.cpus}"] if self.cpus else []) + ([f"memory:{format_size(self.memory)}"] if self.memory else []) + \
                ([f"gpus:{self.gpus}"] if self.gpus else []) + [f"{k}={v:g}" for k, v in self.named]
        return " ".join(parts) or "nothing"


def parse_named(text: str) -> tuple[str, float] | None:
    """`license=1` -> ("license", 1.0); None when it does not parse."""
    name, sep, amount = text.partition("=")
    name, amount = name.strip(), amount.strip()
    if not sep or not RESOURCE_NAME.match(name):
        return None
    try:
        value = float(amount)
    except ValueError:
        return None
    return (name, value) if value > 0 else None


def check_named(value: Any) -> tuple[tuple[str, float], ...] | str:
    """A `resources = {name = N}` table as sorted pairs, or what is wrong with it."""
    if not isinstance(value, Mapping):
        return "expected a table like {license = 1}"
    out = []
    for name, amount in value.items():
        if not RESOURCE_NAME.match(str(name)):
            return f"'{name}' is not a resource name (letters, digits, _ . -)"
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
            return f"resource '{name}' needs a positive number, not {amount!r}"
        out.append((str(name), float(amount)))
    return tuple(sorted(out))


def size_setting(value: Any) -> int | None | str:
    """`memory` in nbflow.toml: "4G" or a number of bytes; the bytes, or what is wrong with it."""
    if isinstance(value, bool):
        return "expected a size like \"4G\""
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str):
        parsed = parse_size(value)
        if parsed is not None:
            return parsed
    return f"{value!r} is not a size: write e.g. \"512M\" or \"4G\""
