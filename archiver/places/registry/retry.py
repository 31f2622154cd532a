"""Calls retried on a bad network: connection errors (a reset, a stall past the timeout),
408, 429 and 5xx, with exponential backoff and full jitter, honouring ``Retry-After``,
within a bounded number of tries and total time. What finally fails is one line naming
the registry and the call."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import httpx

from archiver.errors import PeerError
from archiver.places.registry.bodies import ERROR_BODY, error_detail, read_reply
from archiver.places.registry.transport import is_cert_error, reason

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
T = TypeVar("T")
_sleep = time.sleep


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    base: float = 0.5
    cap: float = 15.0
    total: float = 180.0
    """Seconds all retries of one call may take together."""

    @classmethod
    def from_env(cls) -> RetryPolicy:
        total = os.environ.get("ARCHIVER_RETRY_TOTAL")
        return cls(total=float(total)) if total else cls()

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap)
        return random.uniform(0, min(self.cap, self.base * 2**attempt))  # full jitter


class Endpoint(Protocol):
    """What a retried call needs of the registry it is made to (a ``Session`` is one)."""

    registry: str
    host: str
    retry: RetryPolicy
    http: httpx.Client


class Retryable(Exception):
    """An answer worth another try (internal)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def send(
    session: Endpoint,
    build: Callable[[], httpx.Request],
    finish: Callable[[httpx.Response], T],
    retry: bool = True,
) -> T:
    """Send what ``build`` makes (anew for each try) and ``finish`` the answer (read its
    body, or hand the stream on); a broken connection while finishing is retried too."""
    deadline = time.monotonic() + session.retry.total
    attempt = 0
    while True:
        request = build()
        try:
            response = session.http.send(request, stream=True)
            if response.status_code in RETRYABLE and retry:
                raise Retryable(response)
            return finish(response)
        except httpx.TooManyRedirects:
            raise PeerError(
                f"{session.registry}: {request.method} {request.url}: "
                "redirected too many times (a redirect loop?)"
            ) from None
        except (httpx.TransportError, Retryable) as exc:
            wait = session.retry.delay(attempt, retry_after(exc))
            attempt += 1
            if not retry or attempt >= session.retry.attempts or time.monotonic() + wait > deadline:
                raise failure(session, request, exc) from exc
            if isinstance(exc, Retryable):
                exc.response.close()
            _sleep(wait)


def retry_after(exc: Exception) -> float | None:
    """Seconds a 429 or 503 asks to wait (``Retry-After: SECONDS``), if it says."""
    if not isinstance(exc, Retryable):
        return None
    value = exc.response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def failure(session: Endpoint, request: httpx.Request, exc: Exception) -> PeerError:
    what = f"{request.method} {request.url.path}"
    if isinstance(exc, Retryable):
        try:
            detail = error_detail(read_reply(exc.response, ERROR_BODY))
        except (httpx.TransportError, PeerError):
            detail = ""
        return PeerError(
            f"{session.registry}: {what} answered {exc.response.status_code}"
            f"{' '.join(detail.split())} (gave up after retries)"
        )
    if is_cert_error(exc):
        return PeerError(
            f"{session.registry}: TLS certificate not trusted ({reason(exc)}); add its CA "
            f"to certs.d/{session.host}/ca.crt, or name it with --insecure-registry"
        )
    return PeerError(f"{session.registry}: {what} failed: {reason(exc)}")
