"""Object storage (s3://, gs://, ... through fsspec): list objects and fingerprint them from their metadata, never
downloading them. Credentials and endpoints come from the storage library's usual environment and configuration
(AWS_* variables and ~/.aws for s3fs, FSSPEC_S3_* for fsspec's defaults, ...); nbflow stores none."""
from __future__ import annotations

import datetime as dt
from typing import Any

from .errors import NbflowError
from .paths import fixed_prefix, is_glob, matches, split_url

# metadata fields that change with an object's content, best first: checksums, then version ids
_FINGERPRINTS = ("ETag", "etag", "md5Hash", "crc32c", "checksum", "content_md5", "VersionId", "version_id", "generation")


class StorageError(NbflowError):
    """An object store cannot be reached or listed."""


def _fs(store: str) -> Any:
    """The fsspec filesystem of `s3://bucket` (its protocol's package must be installed)."""
    try:
        import fsspec
    except ImportError:
        raise StorageError(f"{store} needs fsspec. Fix: pip install \"nbflow[s3]\"") from None
    protocol = store.split("://", 1)[0]
    try:
        fs = fsspec.filesystem(protocol)
    except (ImportError, ValueError) as e:
        packages = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
        package = packages.get(protocol, f"fsspec's {protocol} support")
        raise StorageError(f"{store}: {protocol}:// URLs need {package} ({e}). Fix: pip install {package}") from None
    return fs


def _call(store: str, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, PermissionError) as e:
        raise StorageError(f"cannot {what} {store}: {type(e).__name__}: {e}. Fix: check the bucket's name, that it exists, and the "
                           f"credentials in the storage library's environment (for s3://: AWS_* variables or ~/.aws)") from None


def list_objects(key: str) -> list[str]:
    """The objects a URL key names, as URLs, sorted: itself, everything under it (a prefix), or the glob's matches."""
    store, rest = split_url(key)
    fs = _fs(store)
    fs.invalidate_cache()  # a sensor lists again and again: always ask the store
    base = store.split("://", 1)[1]
    if is_glob(key):
        top = split_url(fixed_prefix(key))[1]
        try:
            found = _call(store, "list", fs.find, base + top.rstrip("/"))
        except FileNotFoundError:
            return []
        urls = [_url(store, path) for path in found]
        return sorted(u for u in urls if matches(key, u))
    path = base + rest.rstrip("/") if rest != "/" else base
    try:
        if _call(store, "look up", fs.isfile, path):
            return [key]
        found = _call(store, "list", fs.find, path)
    except FileNotFoundError:
        return []
    return sorted(_url(store, p) for p in found)


def _url(store: str, path: str) -> str:
    """fsspec's `bucket/key` as `s3://bucket/key`."""
    scheme = store.split("://", 1)[0]
    return f"{scheme}://{path.lstrip('/')}"


def stat(url: str) -> tuple[str, int, int]:
    """(fingerprint, size, mtime in ns) of one object from its metadata: its ETag or checksum, else its version id, else
    its modification time and size. FileNotFoundError when it is not there."""
    store, rest = split_url(url)
    fs = _fs(store)
    fs.invalidate_cache()
    info = _call(store, "look up", fs.info, store.split("://", 1)[1] + rest)
    size = int(info.get("size") or 0)
    mtime = _mtime_ns(info)
    for field in _FINGERPRINTS:
        value = info.get(field)
        if value:
            return f"{field.lower()}:{str(value).strip(chr(34))}", size, mtime
    return f"mtime:{mtime}:{size}", size, mtime


def _mtime_ns(info: dict[str, Any]) -> int:
    for field in ("LastModified", "mtime", "updated", "last_modified", "modified"):
        value = info.get(field)
        if isinstance(value, dt.datetime):
            return int(value.timestamp() * 1e9)
        if isinstance(value, (int, float)):
            return int(value * 1e9)
        if isinstance(value, str):
            try:
                return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
            except ValueError:
                continue
    return 0
