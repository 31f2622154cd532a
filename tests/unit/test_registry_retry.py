"""Registry retries over httpx.MockTransport (allowed for auth and retry logic): 429 and
503 retried, Retry-After honoured, a reset connection retried, and giving up after N
tries in one line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from archiver.errors import PeerError
from archiver.places.registry import api, retry
from archiver.places.registry.retry import RetryPolicy
from archiver.places.registry.session import Session

POLICY = RetryPolicy(attempts=4, base=0.001, cap=30.0, total=600)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(retry, "_sleep", slept.append)
    return slept


Answer = Callable[[], httpx.Response] | Exception


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> Answer:
    """A fresh, unread answer at each call (as a real connection gives)."""
    data = b"" if body is None else json.dumps(body).encode()
    return lambda: httpx.Response(status, headers=headers, stream=httpx.ByteStream(data))


def scripted(*answers: Answer, policy: RetryPolicy = POLICY) -> tuple[Session, list[httpx.Request]]:
    """A registry whose /v2/ answers 200 and whose tag lists answer ``answers`` in turn
    (the last one from then on)."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        calls.append(request)
        next_one = answers[min(len(calls), len(answers)) - 1]
        if isinstance(next_one, Exception):
            raise next_one
        return next_one()

    transport = httpx.MockTransport(handler)
    return Session("reg.example", False, None, policy, transport=transport), calls


def tags(*names: str) -> Answer:
    return answer(200, {"tags": list(names)})


def test_503_and_429_are_retried_honouring_retry_after(waits: list[float]) -> None:
    peer, calls = scripted(
        answer(503),
        answer(429, headers={"Retry-After": "7"}),
        tags("1"),
    )
    assert api.tags(peer, "a") == ["1"]
    assert len(calls) == 3
    assert waits[0] <= POLICY.base  # the first backoff: full jitter under the base
    assert waits[1] == 7.0  # as Retry-After said


def test_retry_after_is_held_to_the_cap_and_the_total(waits: list[float]) -> None:
    peer, calls = scripted(answer(503, headers={"Retry-After": "100000"}), tags("1"))
    assert api.tags(peer, "a") == ["1"]
    assert waits == [POLICY.cap]
    tight, calls = scripted(
        answer(503, headers={"Retry-After": "100000"}),
        policy=RetryPolicy(attempts=8, cap=30.0, total=10.0),
    )
    with pytest.raises(PeerError, match=r"answered 503 \(gave up after retries\)$"):
        api.tags(tight, "a")  # a wait past the total time is not waited
    assert waits == [POLICY.cap] and len(calls) == 1


def test_giving_up_after_n_tries_is_one_line_with_the_registrys_error(
    waits: list[float],
) -> None:
    error = {"errors": [{"code": "UNAVAILABLE", "message": "down for\nmaintenance"}]}
    peer, calls = scripted(answer(503, error))
    with pytest.raises(PeerError) as caught:
        api.tags(peer, "a")
    assert len(calls) == POLICY.attempts and len(waits) == POLICY.attempts - 1
    assert str(caught.value) == (
        "reg.example: GET /v2/a/tags/list answered 503: UNAVAILABLE down for maintenance "
        "(gave up after retries)"
    )


def test_a_reset_connection_is_retried(waits: list[float]) -> None:
    reset = httpx.ReadError("[Errno 104] Connection reset by peer")
    peer, calls = scripted(reset, httpx.RemoteProtocolError("peer closed"), tags("x", "y"))
    assert api.tags(peer, "a") == ["x", "y"]
    assert len(calls) == 3 and len(waits) == 2


def test_a_connection_that_keeps_failing_is_one_line(waits: list[float]) -> None:
    peer, calls = scripted(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(PeerError) as caught:
        api.tags(peer, "a")
    assert str(caught.value) == (
        "reg.example: GET /v2/a/tags/list failed: [Errno 111] Connection refused"
    )
    assert len(calls) == POLICY.attempts


def test_a_body_cut_off_while_read_is_retried(waits: list[float]) -> None:
    """The answer's body is read inside the try: a reset in the middle is retried too."""

    class Broken(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b'{"tags": ['
            raise httpx.ReadError("connection reset in the body")

    peer, calls = scripted(lambda: httpx.Response(200, stream=Broken()), tags("z"))
    assert api.tags(peer, "a") == ["z"]
    assert len(calls) == 2


def test_calls_that_may_not_be_repeated_are_not(waits: list[float]) -> None:
    """retry=False (a chunk of an upload, whose caller decides): a 503 is handed back
    as it is, a broken connection is one line at once."""
    peer, calls = scripted(answer(503), httpx.ReadError("reset"), answer(201))
    assert peer.request("PUT", "/v2/a/blobs/uploads/x", (), retry=False).status_code == 503
    with pytest.raises(PeerError, match=r"PUT /v2/a/blobs/uploads/x failed: reset$"):
        peer.request("PUT", "/v2/a/blobs/uploads/x", (), retry=False)
    assert len(calls) == 2 and waits == []
