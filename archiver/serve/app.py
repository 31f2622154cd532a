"""The ASGI application: the registry under ``/v2/``, the pages beside it, Basic auth in
front of both when an htpasswd file is given, and one log line per request (the common
log format, with the reason when an answer was cut short)."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from archiver.serve import pages
from archiver.serve.answers import error
from archiver.serve.auth import Htpasswd
from archiver.serve.catalog import Catalog
from archiver.serve.registry import Registry
from archiver.serve.streaming import ERROR_KEY

log = logging.getLogger("archiver.serve")
USER_KEY = "archiver.user"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def make_app(catalog: Catalog, htpasswd: Htpasswd | None = None) -> Any:
    """The whole server as one ASGI callable."""
    registry = Registry(catalog)

    async def index(request: Request) -> Response:
        await anyio.to_thread.run_sync(catalog.complete)
        return HTMLResponse(pages.index_page(catalog, request.query_params.get("q", "")))

    async def image(request: Request) -> Response:
        repository, _, digest = request.path_params["rest"].rpartition("@")
        await anyio.to_thread.run_sync(catalog.complete)
        found = pages.find_image(catalog, repository, digest)
        if found is None:
            return HTMLResponse(pages.not_found_page(f"no image {repository}@{digest}"), 404)
        return HTMLResponse(pages.image_page(catalog, found, request.url.netloc))

    starlette = Starlette(
        routes=[
            Route("/", index, methods=["GET", "HEAD"]),
            Route("/image/{rest:path}", image, methods=["GET", "HEAD"]),
            Route("/v2", registry.answer, methods=_METHODS),
            Route("/v2/{path:path}", registry.answer, methods=_METHODS),
        ]
    )
    guarded = starlette if htpasswd is None else _Guard(starlette, htpasswd)
    return _Logged(guarded)


class _Guard:
    """Basic auth for every path: 401 with a challenge until an htpasswd user proves who."""

    def __init__(self, app: Any, htpasswd: Htpasswd) -> None:
        self.app, self.htpasswd = app, htpasswd

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization", b"").decode("latin-1")
        user = await anyio.to_thread.run_sync(self.htpasswd.user, header)
        if user is None:
            answer = error(
                "UNAUTHORIZED",
                "authentication required",
                headers={"WWW-Authenticate": 'Basic realm="archiver"'},
            )
            await answer(scope, receive, send)
            return
        scope[USER_KEY] = user
        await self.app(scope, receive, send)


class _Logged:
    """One line per request once it is answered: client, user, time, request line, status,
    body bytes sent; an answer cut short says why."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        sent = 0

        async def counting(message: Any) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            client = (scope.get("client") or ("-",))[0]
            user = scope.get(USER_KEY) or "-"
            when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            line = (
                f'{client} - {user} [{when}] "{scope["method"]} {target} '
                f'HTTP/{scope.get("http_version", "1.1")}" {status or "-"} {sent}'
            )
            reason = scope.get(ERROR_KEY)
            if reason:
                log.error("%s cut short: %s", line, reason)
            else:
                log.info("%s", line)
