"""Which project a request is about: a folder inside the server's root_dir, never anything outside it."""
from __future__ import annotations

import os
from pathlib import Path

from ..config import find_settings
from ..errors import NotFoundError
from ..paths import within


def inside(root_dir: str, relative: str) -> Path:
    """`relative` resolved (symlinks followed) under root_dir; NotFoundError for anything that leaves it.

    Containment is checked with `is_relative_to` on resolved paths, never with a string prefix
    (`/srv/data-secret` must not pass for root `/srv/data`).
    """
    if relative.startswith(("/", "\\", "~")) or os.path.isabs(relative) or "\x00" in relative:
        raise NotFoundError(f"'{relative}' is not a path relative to the Jupyter root folder. "
                            f"Fix: give a folder or notebook path as the file browser shows it")
    target = within(root_dir, relative)
    if target is None:
        raise NotFoundError(f"'{relative}' is outside the Jupyter root folder. Fix: open a folder inside it")
    return target


def project_folder(root_dir: str, relative: str) -> str:
    """The project for a folder or notebook path: the nearest folder (up to root_dir) with nbflow settings, else the folder itself."""
    target = inside(root_dir, relative)
    if not target.exists():
        raise NotFoundError(f"no folder or notebook '{relative}' under the Jupyter root folder. "
                            f"Fix: check the path in the file browser")
    folder = target if target.is_dir() else target.parent
    root = Path(root_dir).resolve()
    here = folder
    while True:
        if find_settings(str(here))[0] is not None:
            return str(here)
        if here == root or here.parent == here:
            return str(folder)
        here = here.parent


def to_server_path(root_dir: str, path: str | None) -> str | None:
    """An absolute path as the server-root-relative posix path JupyterLab opens; None when outside root_dir or unset."""
    if not path:
        return None
    full = within(root_dir, path)
    return None if full is None else full.relative_to(Path(root_dir).resolve()).as_posix()


def is_hidden(relative: str) -> bool:
    """Whether a server-root-relative path goes through a dot-folder (JupyterLab refuses those without allow_hidden)."""
    return any(part.startswith(".") for part in relative.split("/"))


def server_relative(root_dir: str, message: str) -> str:
    """A message for a REST client: absolute paths under the server's root folder become relative to it, and the
    root folder itself and the home folder are not shown (a client must not learn the server's file layout)."""
    root = str(Path(root_dir).resolve())
    for base in dict.fromkeys((root, os.path.abspath(root_dir))):
        message = message.replace(base + os.sep, "").replace(base, ".")
    home = os.path.expanduser("~")
    return message.replace(home + os.sep, "~" + os.sep) if home not in ("/", "") else message
