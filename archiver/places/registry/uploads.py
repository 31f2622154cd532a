"""Blob uploads that survive a bad network: mount, monolithic or chunked, resumable.

Small blobs go in one ``PUT``; larger ones in ``PATCH`` chunks. After each chunk the
registry's upload location is kept in a small state file, so an upload cut off (a reset
connection, or the whole process killed) asks the registry how much it holds and goes on
from there; the blob is read again from its start to that point locally, so its digest is
still checked over every byte. A registry that lost the upload gets it anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from typing import BinaryIO

from archiver.blobs.atomic import replace_file
from archiver.errors import IntegrityError, PeerError
from archiver.model.descriptor import Descriptor
from archiver.places.base import Opener
from archiver.places.registry.api import pull_scope, push_scope
from archiver.places.registry.bodies import Reply, check
from archiver.places.registry.cache_file import cache_dir, read_cache
from archiver.places.registry.client import RegistryClient

DEFAULT_CHUNK = 32 * 1024 * 1024
_PIECE = 1024 * 1024


def chunk_size() -> int:
    value = os.environ.get("ARCHIVER_UPLOAD_CHUNK")
    return max(64 * 1024, int(value)) if value else DEFAULT_CHUNK


class Upload:
    """One blob into one repository."""

    def __init__(
        self, client: RegistryClient, repository: str, descriptor: Descriptor, opener: Opener
    ) -> None:
        self._client = client
        self._repository = repository
        self._descriptor = descriptor
        self._opener = opener
        self._scopes = (push_scope(repository),)
        key = f"{client.registry}/{repository}@{descriptor.digest}"
        self._state = cache_dir() / "uploads" / (hashlib.sha256(key.encode()).hexdigest() + ".json")
        self.resumed_from = 0
        self.bytes_sent = 0

    def mount(self, source_repository: str) -> bool:
        """Cross-repository mount; True when the registry linked the blob."""
        query = f"?mount={self._descriptor.digest}&from={source_repository}"
        response = self._client.request(
            "POST",
            f"/v2/{self._repository}/blobs/uploads/{query}",
            scopes=(*self._scopes, pull_scope(source_repository)),
        )
        if response.status_code == 201:
            return True
        if response.status_code in (401, 403, 404):
            return False  # not allowed to read the other repository: upload instead
        if response.status_code == 202:  # not mounted; an upload was opened: drop it
            location = response.headers.get("Location")
            if location:
                with contextlib.suppress(PeerError):
                    self._client.request("DELETE", location, scopes=self._scopes)
            return False
        _fail(response, self._client.registry, f"mount {self._descriptor.digest}")
        return False

    def run(self) -> None:
        """Send the blob; every attempt checks what the registry already has first."""
        policy = self._client.retry
        deadline = time.monotonic() + policy.total
        attempt = 0
        while True:
            location, offset = self._resume() or (self._start(), 0)
            if offset:
                self.resumed_from = max(self.resumed_from, offset)
            try:
                self._send(location, offset)
                self._forget()
                return
            except _Interrupted as exc:
                wait = policy.delay(attempt, None)
                attempt += 1
                if attempt >= policy.attempts or time.monotonic() + wait > deadline:
                    raise PeerError(
                        f"{self._client.registry}/{self._repository}: upload of "
                        f"{self._descriptor.digest} failed: {exc} (gave up after retries)"
                    ) from None
                time.sleep(wait)

    # -- inside ----------------------------------------------------------------------------

    def _start(self) -> str:
        response = self._client.request(
            "POST", f"/v2/{self._repository}/blobs/uploads/", scopes=self._scopes
        )
        if response.status_code != 202:
            _fail(response, self._client.registry, f"start upload of {self._descriptor.digest}")
        return _location(response, self._client)

    def _resume(self) -> tuple[str, int] | None:
        """The upload location and the bytes the registry holds, from the state file."""
        saved = read_cache(self._state)  # capped; an unreadable state is no state
        location = saved.get("location")
        if not isinstance(location, str):
            return None
        try:
            response = self._client.request("GET", location, scopes=self._scopes)
        except PeerError:
            return None
        held = _range_end(response.headers.get("Range")) if response.status_code == 204 else None
        if held is None or held != saved.get("offset"):
            self._forget()  # the registry lost it, or holds a part we never confirmed
            return None
        return _location(response, self._client, default=location), held

    def _remember(self, location: str, offset: int) -> None:
        self._state.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = json.dumps({"location": location, "offset": offset}).encode()
        replace_file(self._state, state, mode=0o600)

    def _forget(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._state.unlink()

    def _send(self, location: str, offset: int) -> None:
        size = self._descriptor.size
        with contextlib.closing(self._opener()) as stream:
            _skip(stream, offset)  # read (and hash) what the registry already holds
            chunk = chunk_size()
            if offset == 0 and size <= chunk:
                self._finish(location, stream, size)
                return
            while offset < size:
                end = min(size, offset + chunk)
                location = self._patch(location, stream, offset, end)
                offset = end
                self._remember(location, offset)
            if stream.read(1):  # at the end: this read is the one that checks the digest
                raise IntegrityError("upload", str(self._descriptor.digest), "longer than declared")
            self._finish(location, None, 0)

    def _patch(self, location: str, stream: BinaryIO, start: int, end: int) -> str:
        try:
            response = self._client.request(
                "PATCH",
                location,
                scopes=self._scopes,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{end - 1}",
                    "Content-Length": str(end - start),
                },
                content=self._body(stream, end - start, last=False),
                retry=False,
            )
        except PeerError as exc:
            raise _Interrupted(str(exc)) from None
        if response.status_code != 202:
            self._retry_or_fail(response, "PATCH")
        return _location(response, self._client, default=location)

    def _finish(self, location: str, stream: BinaryIO | None, length: int) -> None:
        separator = "&" if "?" in location else "?"
        url = f"{location}{separator}digest={self._descriptor.digest}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        body = self._body(stream, length, last=True) if stream is not None else b""
        try:
            response = self._client.request(
                "PUT", url, scopes=self._scopes, headers=headers, content=body, retry=False
            )
        except PeerError as exc:
            raise _Interrupted(str(exc)) from None
        if response.status_code != 201:
            self._retry_or_fail(response, "PUT")

    def _body(self, stream: BinaryIO, length: int, last: bool) -> Iterator[bytes]:
        left = length
        while left:
            piece = stream.read(min(_PIECE, left))
            if not piece:
                raise IntegrityError("upload", str(self._descriptor.digest), "truncated")
            left -= len(piece)
            self.bytes_sent += len(piece)
            yield piece
        if last and stream.read(1):  # the read at the end checks the digest
            raise IntegrityError("upload", str(self._descriptor.digest), "longer than declared")

    def _retry_or_fail(self, response: Reply, what: str) -> None:
        if response.status_code in (404, 416) or response.status_code >= 500:
            # the upload was lost or is out of step, or the registry stumbled: start over
            # from what it holds (the state file, if any, says where)
            raise _Interrupted(f"{what} answered {response.status_code}")
        if response.status_code == 429:
            raise _Interrupted("too many requests")
        _fail(response, self._client.registry, f"{what} of {self._descriptor.digest}")


class _Interrupted(Exception):
    pass


def _skip(stream: BinaryIO, count: int) -> None:
    while count:
        piece = stream.read(min(_PIECE, count))
        if not piece:
            raise IntegrityError("upload", "", "truncated while skipping what the registry holds")
        count -= len(piece)


def _location(response: Reply, client: RegistryClient, default: str | None = None) -> str:
    location = response.headers.get("Location") or default
    if not location:
        raise PeerError(f"{client.registry}: the registry gave no upload location")
    return location if location.startswith(("http://", "https://")) else client.url(location)


def _range_end(header: str | None) -> int | None:
    """Bytes held, from ``Range: 0-N`` (N inclusive; ``0--1`` or ``0-0`` on an empty one)."""
    if not header:
        return None
    match = re.fullmatch(r"(?:bytes=)?0-(-?\d+)", header.strip())
    return int(match.group(1)) + 1 if match else None


def _fail(response: Reply, registry: str, what: str) -> None:
    check(response, registry, what)
    raise PeerError(f"{registry}: {what}: unexpected answer {response.status_code}")
