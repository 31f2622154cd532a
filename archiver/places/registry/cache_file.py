"""Small per-registry cache files under the user's state directory (where blobs are, what
each plain layer became when compressed): read with a size cap and strict JSON, written
atomically with mode 0600. A cache only: anything unreadable is started afresh, and a
failed write costs work on the next run, never data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from archiver.blobs.atomic import replace_file
from archiver.errors import ArchiverError
from archiver.model.json_decode import load_json

MAX_FILE = 8 * 1024 * 1024
"""Bigger than any cache we write (20,000 entries); a bigger file is not ours."""


def cache_dir() -> Path:
    """archiver's folder under the user's cache directory (``XDG_CACHE_HOME``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "archiver"


def cache_path(kind: str, registry: str) -> Path:
    """The ``kind`` cache file of ``registry`` (its name hashed: no path from a host name)."""
    name = hashlib.sha256(registry.encode()).hexdigest()[:32]
    return cache_dir() / kind / f"{name}.json"


def read_cache(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or an empty one when it is absent or unreadable."""
    with contextlib.suppress(OSError, ArchiverError, ValueError, RecursionError):
        with path.open("rb") as file:
            raw = file.read(MAX_FILE + 1)
        if len(raw) <= MAX_FILE:
            data = load_json(raw, str(path))
            if isinstance(data, dict):
                return data
    return {}


def write_cache(path: Path, data: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        replace_file(path, json.dumps(data).encode(), mode=0o600)
