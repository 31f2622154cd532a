"""The spec's error answers (``{"errors": [{"code", "message", "detail"}]}``) and the
headers every registry answer carries."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}

STATUS = {
    "BLOB_UNKNOWN": 404,
    "MANIFEST_UNKNOWN": 404,
    "NAME_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "DIGEST_INVALID": 400,
    "TAG_INVALID": 400,
    "PAGINATION_NUMBER_INVALID": 400,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED": 405,
    "RANGE_INVALID": 416,
    "NOT_FOUND": 404,
}


def error(
    code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """One error as the distribution spec writes it, with its status."""
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    body = json.dumps({"errors": [entry]}).encode()
    return Response(
        body,
        STATUS[code],
        headers={**API_VERSION, **(headers or {})},
        media_type="application/json",
    )


def unsupported(method: str, path: str) -> Response:
    """A write (upload, delete, manifest put): this registry is read-only."""
    return error(
        "UNSUPPORTED",
        "this registry is read-only: uploads, pushes and deletes are refused",
        {"method": method, "path": path},
        {"Allow": "GET, HEAD"},
    )
