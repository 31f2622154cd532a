"""The distribution API calls, as functions of a ``Session``: manifests, blobs, tags and
the catalog (uploads are ``uploads.Upload``). Each raises NotFound or PeerError in one
line; every body read is capped (manifests at ``limits.MAX_DOCUMENT``), and tag lists
and the catalog follow ``Link: rel="next"`` pages up to a fixed number, never in a loop.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from archiver.blobs import limits
from archiver.errors import NotFound, PeerError
from archiver.places.registry.bodies import ERROR_BODY, check, read_reply
from archiver.places.registry.manifests import MANIFEST_ACCEPT, Head, stated_head
from archiver.places.registry.session import Session

PAGE_SIZE = 1000
"""Entries asked for per page of a tag list or the catalog (the rest follows Link)."""
MAX_PAGES = 10_000
"""Pages of one tag list or catalog followed before giving up."""
MAX_PAGE = 16 * 1024 * 1024
"""One page of a tag list or the catalog (a registry may ignore ``n`` and send all)."""
_NEXT = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


@dataclass(frozen=True)
class Fetched:
    """A manifest or index as the registry sent it."""

    data: bytes
    media_type: str
    stated_digest: str | None
    """The registry's ``Docker-Content-Digest``, if it sent one."""
    url: str


def get_manifest(session: Session, repository: str, reference: str) -> Fetched:
    reply = session.request(
        "GET",
        f"/v2/{repository}/manifests/{reference}",
        scopes=(pull_scope(repository),),
        headers={"Accept": MANIFEST_ACCEPT},
        limit=limits.MAX_DOCUMENT,
    )
    if reply.status_code == 404:
        raise NotFound(f"{session.registry}/{repository}: no manifest {reference}")
    check(reply, session.registry, f"manifest {repository}:{reference}")
    media_type = reply.headers.get("Content-Type", "").split(";")[0].strip()
    stated = reply.headers.get("Docker-Content-Digest")
    return Fetched(reply.whole(), media_type, stated, reply.url)


def head_manifest(session: Session, repository: str, reference: str) -> Head:
    """The manifest ``reference`` names now, without its body (a GET, hashed, when the
    registry states no digest)."""
    reply = session.request(
        "HEAD",
        f"/v2/{repository}/manifests/{reference}",
        scopes=(pull_scope(repository),),
        headers={"Accept": MANIFEST_ACCEPT},
    )
    if reply.status_code == 404:
        raise NotFound(f"{session.registry}/{repository}: no manifest {reference}")
    check(reply, session.registry, f"manifest {repository}:{reference}")
    headers = reply.headers
    media_type = headers.get("Content-Type", "")
    found = stated_head(
        headers.get("Docker-Content-Digest", ""), headers.get("Content-Length", ""), media_type
    )
    if found is not None:
        return found
    fetched = get_manifest(session, repository, reference)
    digest = "sha256:" + hashlib.sha256(fetched.data).hexdigest()
    return Head(digest, fetched.media_type or media_type.split(";")[0].strip(), len(fetched.data))


def blob_exists(session: Session, repository: str, digest: str, push: bool = False) -> int | None:
    """The blob's size when ``repository`` has it, else None (``push``: asked while
    pushing, with the push token, so one token serves the whole push)."""
    scope = push_scope(repository) if push else pull_scope(repository)
    reply = session.request("HEAD", f"/v2/{repository}/blobs/{digest}", scopes=(scope,))
    if reply.status_code == 404:
        return None
    check(reply, session.registry, f"HEAD blob {digest}")
    length = reply.headers.get("Content-Length", "-1")
    if not re.fullmatch(r"-?\d{1,19}", length.strip()):
        raise PeerError(f"{reply.url}: Content-Length {length[:40]!r} is not a size")
    return int(length)


def open_blob(session: Session, repository: str, digest: str) -> httpx.Response:
    """The blob's body, to stream (close it)."""
    response = session.open("GET", f"/v2/{repository}/blobs/{digest}", (pull_scope(repository),))
    if response.status_code == 404:
        response.close()
        raise NotFound(f"{session.registry}/{repository}: no blob {digest}")
    if response.status_code >= 400:
        check(read_reply(response, ERROR_BODY), session.registry, f"blob {digest}")
    return response


def put_manifest(
    session: Session, repository: str, reference: str, data: bytes, media_type: str
) -> str:
    reply = session.request(
        "PUT",
        f"/v2/{repository}/manifests/{reference}",
        scopes=(push_scope(repository),),
        headers={"Content-Type": media_type},
        content=data,
    )
    check(reply, session.registry, f"manifest {repository}:{reference}")
    return reply.headers.get("Docker-Content-Digest", "")


def tags(session: Session, repository: str) -> list[str]:
    path = f"/v2/{repository}/tags/list?n={PAGE_SIZE}"
    return _names(session, path, (pull_scope(repository),), "tags")


def catalog(session: Session) -> list[str]:
    path = f"/v2/_catalog?n={PAGE_SIZE}"
    return _names(session, path, ("registry:catalog:*",), "repositories")


def check_login(session: Session) -> None:
    """Prove the credentials work (``archiver login``)."""
    if session.challenge is None:
        return
    reply = session.request("GET", "/v2/", scopes=())
    if reply.status_code in (401, 403):
        raise PeerError(f"{session.registry}: login refused: incorrect username or password")
    check(reply, session.registry, "login")


def _names(session: Session, path: str, scopes: tuple[str, ...], key: str) -> list[str]:
    found: list[str] = []
    for url, page in pages(session, path, scopes):
        names = page.get(key) or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise PeerError(f"{url}: {key!r} is not a list of names")
        found += names
    return found


def pages(
    session: Session, path: str, scopes: tuple[str, ...]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each page (its URL and JSON object) of a list that ``Link: rel="next"`` continues."""
    seen: set[str] = set()
    next_url: str | None = session.url(path)
    while next_url is not None:
        if next_url in seen:
            raise PeerError(f"{next_url}: the list's pages lead back to this one (a Link loop)")
        if len(seen) >= MAX_PAGES:
            raise PeerError(f"{next_url}: the list goes on past {MAX_PAGES} pages; gave up")
        seen.add(next_url)
        reply = session.request("GET", next_url, scopes=scopes, limit=MAX_PAGE)
        if reply.status_code == 404:
            raise NotFound(f"{session.registry}: {path.split('?')[0]}: not found")
        check(reply, session.registry, path.split("?")[0])
        page = reply.json()
        if not isinstance(page, dict):
            raise PeerError(f"{reply.url}: not a JSON object")
        yield reply.url, page
        link = _NEXT.search(reply.headers.get("Link", ""))
        next_url = session.url(link.group(1), relative_to=reply.url) if link else None


def referrers(session: Session, repository: str, digest: str) -> list[dict[str, Any]] | None:
    """The descriptors the referrers API lists for ``digest`` (OCI distribution 1.1), or
    None when the registry says it has no such API (404, or 400/405/501 from those that
    refuse the path): then the fallback tag is used."""
    reply = session.request(
        "GET",
        f"/v2/{repository}/referrers/{digest}",
        scopes=(pull_scope(repository),),
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        limit=limits.MAX_DOCUMENT,
    )
    if reply.status_code in (400, 404, 405, 501):
        return None
    check(reply, session.registry, f"referrers of {repository}@{digest}")
    page = reply.json()
    found = page.get("manifests") if isinstance(page, dict) else None
    if not isinstance(found, list) or not all(isinstance(d, dict) for d in found):
        raise PeerError(f"{reply.url}: the referrers answer is not an index of descriptors")
    return found
