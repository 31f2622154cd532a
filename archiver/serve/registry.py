"""The OCI distribution API, read side, over a Catalog: ``/v2/``, manifests and blobs by
tag or digest (GET and HEAD), ranges of blobs, ``_catalog`` and ``tags/list`` pages, the
referrers API. Writes of any kind are refused with UNSUPPORTED: nothing is ever written."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from archiver.errors import InputError
from archiver.model import media
from archiver.model.digest import Digest
from archiver.model.platform import Platform
from archiver.places.base import read_document
from archiver.serve import answers
from archiver.serve.answers import API_VERSION, error
from archiver.serve.catalog import Catalog, Held
from archiver.serve.chains import Chains
from archiver.serve.frames import FrameCache
from archiver.serve.ranges import RangeError, parse_range
from archiver.serve.streaming import READERS, BlobAnswer, Proved, chunks

_NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_ROUTE = re.compile(r"(?P<name>.+)/(?P<kind>manifests|blobs|referrers)/(?P<ref>[^/]+)")
_TAGS = re.compile(r"(?P<name>.+)/tags/list")
_MOST_PER_PAGE = 10_000


class Registry:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.proved = Proved()
        self.frames = FrameCache()
        self.chains = Chains()
        self.readers: anyio.CapacityLimiter | None = None

    async def answer(self, request: Request) -> Any:
        path = request.path_params.get("path", "")
        method = request.method
        if method not in ("GET", "HEAD"):
            return answers.unsupported(method, request.url.path)
        if path in ("", "/"):
            return _json({}, method)
        if path == "_catalog":
            return self._catalog(request)
        if "/blobs/uploads" in f"/{path}":
            return answers.unsupported(method, request.url.path)
        tags = _TAGS.fullmatch(path)
        if tags:
            return self._tags(request, tags["name"])
        route = _ROUTE.fullmatch(path)
        if route is None:
            return error("NOT_FOUND", f"no such endpoint: {request.url.path}")
        name, kind, ref = route["name"], route["kind"], route["ref"]
        problem = self._check_name(name)
        if problem is not None:
            return problem
        await anyio.to_thread.run_sync(self.catalog.ensure, name)
        if kind == "manifests":
            return await self._manifest(request, name, ref)
        digest = _digest(ref)
        if isinstance(digest, Response):
            return digest
        if kind == "blobs":
            return self._blob(request, name, digest)
        return self._referrers(request, name, digest)

    def _check_name(self, name: str) -> Response | None:
        if not _NAME.fullmatch(name) or len(name) > 255:
            return error("NAME_INVALID", f"invalid repository name {name!r}")
        if not self.catalog.knows(name):
            return error("NAME_UNKNOWN", f"repository {name!r} is not served here")
        return None

    async def _manifest(self, request: Request, name: str, ref: str) -> Response:
        if ":" in ref:
            digest = _digest(ref)
            if isinstance(digest, Response):
                return digest
        elif not _TAG.fullmatch(ref):
            return error("TAG_INVALID", f"invalid tag {ref!r}")
        else:
            tagged = self.catalog.tags.get(name, {}).get(ref)
            if tagged is None:
                return error("MANIFEST_UNKNOWN", f"{name}:{ref} is not served here")
            digest = tagged
        held = self.catalog.manifests.get(digest)
        if held is None or not self.catalog.serves(name, digest):
            return error(
                "MANIFEST_UNKNOWN",
                f"{name}@{digest} is not served here{_why(self.catalog, name, digest)}",
            )
        held = self._negotiated(held, request.headers.get("accept", ""), name)
        descriptor = held.descriptor
        headers = {
            **API_VERSION,
            "Docker-Content-Digest": str(descriptor.digest),
            "ETag": f'"{descriptor.digest}"',
            "Content-Length": str(descriptor.size),
        }
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(
                None, 304, headers={k: v for k, v in headers.items() if k != "Content-Length"}
            )
        if request.method == "HEAD":
            return Response(None, 200, headers=headers, media_type=descriptor.media_type)
        raw = await anyio.to_thread.run_sync(read_document, held.source, descriptor)
        return Response(raw, 200, headers=headers, media_type=descriptor.media_type)

    def _negotiated(self, held: Held, accept: str, name: str) -> Held:
        """An index to a client that accepts none of the index types but an image manifest
        type: this host's platform's manifest (as the distribution registry does); every
        other answer is the document as stored."""
        accepted = {part.split(";")[0].strip() for part in accept.split(",") if part.strip()}
        kind = held.descriptor.media_type
        if not accepted or kind in accepted or "*/*" in accepted or not media.is_index(kind):
            return held
        host = Platform.host()
        for image in self.catalog.images:
            for node in image.root.images if image.root is not None else []:
                platform = node.descriptor.platform
                if (
                    image.digest == held.descriptor.digest
                    and platform is not None
                    and platform.matches(host)
                    and node.manifest.media_type in accepted
                    and self.catalog.serves(name, node.manifest.digest)
                ):
                    return self.catalog.manifests[node.manifest.digest]
        return held

    def _blob(self, request: Request, name: str, digest: Digest) -> Any:
        held = self.catalog.blobs.get(digest) or self.catalog.manifests.get(digest)
        if held is None or not self.catalog.serves(name, digest):
            return error("BLOB_UNKNOWN", f"blob {digest} is not in {name}")
        size = held.descriptor.size
        headers = {
            **API_VERSION,
            "Docker-Content-Digest": str(digest),
            "ETag": f'"{digest}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        try:
            wanted = parse_range(request.headers.get("range"), size)
        except RangeError as exc:
            return error("RANGE_INVALID", str(exc), headers={"Content-Range": f"bytes */{size}"})
        status = 200
        length = size
        if wanted is not None:
            status, length = 206, wanted.length
            headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{size}"
        headers["Content-Length"] = str(length)
        if request.method == "HEAD":
            return Response(None, status, headers=headers)
        if self.readers is None:  # made in the event loop, the first time a blob is sent
            self.readers = anyio.CapacityLimiter(READERS)
        return BlobAnswer(
            status,
            headers,
            chunks(held, wanted, self.proved, self.frames, self.chains),
            self.readers,
        )

    def _referrers(self, request: Request, name: str, digest: Digest) -> Response:
        found = [
            d for d in self.catalog.referrers.get(digest, []) if self.catalog.serves(name, d.digest)
        ]
        wanted = request.query_params.get("artifactType")
        headers = dict(API_VERSION)
        if wanted:
            found = [d for d in found if d.artifact_type == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        body = {
            "schemaVersion": 2,
            "mediaType": media.OCI_INDEX,
            "manifests": [d.to_json() for d in found],
        }
        return _json(body, request.method, media.OCI_INDEX, headers)

    def _catalog(self, request: Request) -> Response:
        page = _page(request, self.catalog.repositories(), "/v2/_catalog")
        if isinstance(page, Response):
            return page
        names, link = page
        return _json({"repositories": names}, request.method, headers=link)

    def _tags(self, request: Request, name: str) -> Response:
        problem = self._check_name(name)
        if problem is not None:
            return problem
        tags = sorted(self.catalog.tags.get(name, {}))
        page = _page(request, tags, f"/v2/{name}/tags/list")
        if isinstance(page, Response):
            return page
        names, link = page
        return _json({"name": name, "tags": names}, request.method, headers=link)


def _why(catalog: Catalog, name: str, digest: Digest) -> str:
    """What stopped an image from being served, when something did."""
    for image in catalog.images:
        if image.repository == name and image.digest == digest and image.problem:
            return f" ({image.problem})"
    return ""


def _digest(text: str) -> Digest | Response:
    try:
        return Digest.parse(text)
    except InputError as exc:
        return error("DIGEST_INVALID", str(exc))


def _page(
    request: Request, names: list[str], path: str
) -> tuple[list[str], dict[str, str]] | Response:
    """``n`` names after ``last``, and a Link header to the next page when there is one."""
    last = request.query_params.get("last")
    count = request.query_params.get("n")
    if last:
        names = [n for n in names if n > last]
    if count is None:
        return names, {}
    if not count.isdigit() or int(count) > _MOST_PER_PAGE:
        return error("PAGINATION_NUMBER_INVALID", f"n={count!r}: a number up to {_MOST_PER_PAGE}")
    wanted = int(count)
    page = names[:wanted]
    if wanted and len(names) > wanted:
        return page, {"Link": f'<{path}?n={wanted}&last={page[-1]}>; rel="next"'}
    return page, {}


def _json(
    body: Any,
    method: str,
    media_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Response:
    data = json.dumps(body).encode()
    all_headers = {**API_VERSION, **(headers or {}), "Content-Length": str(len(data))}
    return Response(b"" if method == "HEAD" else data, 200, all_headers, media_type=media_type)
