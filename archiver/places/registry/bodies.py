"""What a registry answers, read into memory within a cap, and its JSON.

Every body read whole (manifests, tokens, tag lists, error messages) is read through
``read_reply``: the raw bytes are decoded here, as they come, for ``Content-Encoding``
gzip, deflate or zstd, a piece at a time, and reading stops one byte past the cap, so
neither an endless body nor a compression bomb is ever held. A body past its cap is
``truncated``: good enough for an error's message, refused (``Reply.whole``) where the
whole document is needed. A body that does not decode as its encoding says is a
PeerError; JSON that does not parse (too deep, numbers too long) an InputError, each in
one line naming the URL.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import httpx

from archiver.errors import InputError, PeerError
from archiver.model.json_decode import load_json

ERROR_BODY = 64 * 1024
"""What is read of an answer whose body only an error message could use."""
MAX_TOKEN = 1024 * 1024
"""A token service's answer."""
PIECE = 64 * 1024
"""Raw bytes read, and decoded bytes made, at a time."""
_ZSTD_WINDOW = 16 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """An answer whose body was read (at most ``limit`` bytes of it, decoded)."""

    method: str
    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes
    limit: int
    truncated: bool = False

    def close(self) -> None:
        """Nothing to do: the body was read and the connection let go."""

    def whole(self) -> bytes:
        """The body, refused when it was longer than the cap."""
        if self.truncated:
            raise InputError(f"{self.url}: larger than the {self.limit}-byte limit for its kind")
        return self.content

    def json(self) -> Any:
        return load_json(self.whole(), self.url)


def read_reply(response: httpx.Response, limit: int) -> Reply:
    """Read ``response``'s body, decoded, up to ``limit`` bytes, and close it. Raises
    httpx.TransportError when the connection breaks (the call may be retried)."""
    url = str(response.request.url)
    kept: list[bytes] = []
    size = 0
    try:
        if response.request.method != "HEAD":
            for piece in decoded(response):
                kept.append(piece)
                size += len(piece)
                if size > limit:
                    break
    finally:
        response.close()
    content = b"".join(kept)
    return Reply(
        method=response.request.method,
        url=url,
        status_code=response.status_code,
        headers=response.headers,
        content=content[:limit],
        limit=limit,
        truncated=size > limit,
    )


def decoded(response: httpx.Response) -> Iterator[bytes]:
    """The body as its Content-Encoding (one or several, in order) says it is to be read,
    in pieces of at most PIECE bytes."""
    url = str(response.request.url)
    header = response.headers.get("Content-Encoding", "")
    encodings = [part.strip().lower() for part in header.split(",") if part.strip()]
    pieces: Iterator[bytes] = response.iter_raw(PIECE)
    for encoding in reversed(encodings):
        if encoding in ("gzip", "x-gzip"):
            pieces = _inflated(pieces, zlib.MAX_WBITS | 16, url, encoding)
        elif encoding == "deflate":
            pieces = _inflated(pieces, zlib.MAX_WBITS, url, encoding)
        elif encoding == "zstd":
            pieces = _unzstd(pieces, url)
        elif encoding != "identity":
            raise PeerError(f"{url}: the body's Content-Encoding {encoding!r} is not supported")
    return pieces


def _inflated(pieces: Iterator[bytes], wbits: int, url: str, encoding: str) -> Iterator[bytes]:
    inflater = zlib.decompressobj(wbits)
    started = fed = False
    try:
        for piece in pieces:
            data, fed = piece, True
            while not inflater.eof:
                try:
                    out = inflater.decompress(data, PIECE)
                except zlib.error:
                    if encoding != "deflate" or started:
                        raise
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some send
                    started = True
                    continue
                started = True
                if out:
                    yield out
                data = inflater.unconsumed_tail
                if not data and len(out) < PIECE:
                    break  # this piece is used up, and nothing is pending
        if fed and not inflater.eof:
            raise PeerError(f"{url}: the body ends inside its {encoding} stream")
    except zlib.error as exc:
        raise PeerError(f"{url}: the body is not the {encoding} it is said to be ({exc})") from None


def _unzstd(pieces: Iterator[bytes], url: str) -> Iterator[bytes]:
    import zstandard

    source = _PiecesReader(pieces)
    decompressor = zstandard.ZstdDecompressor(max_window_size=_ZSTD_WINDOW)
    reader = decompressor.stream_reader(cast(BinaryIO, source), read_across_frames=True)
    try:
        while True:
            out = reader.read(PIECE)
            if not out:
                return
            yield out
    except zstandard.ZstdError as exc:
        raise PeerError(f"{url}: the body is not the zstd it is said to be ({exc})") from None


class _PiecesReader:
    """Raw pieces as a file to read (what the zstd reader takes)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._pending = piece
        size = len(self._pending) if size is None or size < 0 else size
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


def error_detail(reply: Reply) -> str:
    """``: CODE message`` of the first error a registry's error body names, or ``""``."""
    try:
        errors = json.loads(reply.content).get("errors") or []
        first = errors[0]
        return f": {first.get('code', '')} {first.get('message', '')}".rstrip()
    except (ValueError, RecursionError, AttributeError, IndexError, TypeError):
        return ""


def check(reply: Reply, registry: str, what: str) -> None:
    """Nothing for a success; a one-line PeerError (with the registry's own error)."""
    if reply.status_code < 400:
        return
    detail = " ".join(error_detail(reply).split())
    if reply.status_code in (401, 403):
        raise PeerError(f"{registry}: {what}: access denied ({reply.status_code}){detail}")
    raise PeerError(f"{registry}: {what}: {reply.status_code}{detail}")
