"""Repositories pushed at once (engine.push): lines in repository order, one sender per
blob (places.registry.locations), the first failure stops the rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from archiver.engine.push import _each_repository, _InOrder
from archiver.errors import PeerError
from archiver.model.digest import Digest
from archiver.places.registry.locations import BlobLocations

DIGEST = Digest.parse("sha256:" + "a" * 64)


def test_lines_come_out_in_the_order_of_the_repositories() -> None:
    out: list[str] = []
    lines = _InOrder(out.append, 3)
    first, second, third = lines.of(0), lines.of(1), lines.of(2)
    first("0a")
    third("2a")
    second("1a")
    assert out == ["0a"]  # the first is printed as it comes, the others are held
    lines.ended(2)
    first("0b")
    assert out == ["0a", "0b"]
    lines.ended(0)
    assert out == ["0a", "0b", "1a"]
    second("1b")
    lines.ended(1)  # the third had ended: its lines follow at once
    assert out == ["0a", "0b", "1a", "1b", "2a"]


def test_one_repository_at_a_time_sends_a_blob() -> None:
    locations = BlobLocations("r.example")
    inside: list[str] = []
    most = [0]
    gate = threading.Lock()

    def send(repository: str) -> None:
        with locations.sending(str(DIGEST)):
            with gate:
                inside.append(repository)
                most[0] = max(most[0], len(inside))
            time.sleep(0.05)
            if locations.find(DIGEST, repository) is None:  # the others would mount it
                locations.add(DIGEST, repository)
            with gate:
                inside.remove(repository)

    threads = [threading.Thread(target=send, args=(f"repo{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert most[0] == 1
    assert not locations._sending  # nothing left behind


def test_the_first_failure_in_order_is_raised_and_stops_those_not_begun() -> None:
    begun: list[int] = []

    def push_one(i: int) -> int:
        begun.append(i)
        if i in (1, 2):
            raise PeerError(f"repository {i} refused")
        time.sleep(0.05)
        return i

    with pytest.raises(PeerError, match="repository 1 refused"):
        _each_repository(push_one, 40)
    assert len(begun) < 40


def test_every_repository_pushed_gives_its_result_in_order() -> None:
    assert _each_repository(lambda i: i * 10, 7) == [0, 10, 20, 30, 40, 50, 60]
    assert _each_repository(lambda i: i + 1, 1) == [1]


def test_repositories_take_a_blob_in_the_push_order_whoever_comes_first() -> None:
    locations = BlobLocations("r.example")
    for turn in (0, 1, 2):
        locations.needed_by(DIGEST, turn)
    order: list[int] = []

    def send(turn: int, delay: float) -> None:
        time.sleep(delay)
        with locations.sending(str(DIGEST), turn):
            order.append(turn)

    threads = [
        threading.Thread(target=send, args=(turn, delay))
        for turn, delay in ((2, 0.0), (1, 0.05), (0, 0.1))  # the last reaches it first
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2]


@pytest.mark.parametrize(
    "first_is_done",
    [
        # it ended without sending (it found the blob there, or failed)
        lambda locations: locations.ended(0),
        # it found the blob there (a HEAD): the next need not wait for its whole push
        lambda locations: locations.passed(str(DIGEST), 0),
    ],
    ids=["ended", "passed"],
)
def test_the_next_repository_waits_until_the_first_is_done_with_the_blob(
    first_is_done: Callable[[BlobLocations], None],
) -> None:
    locations = BlobLocations("r.example")
    locations.needed_by(DIGEST, 0)
    locations.needed_by(DIGEST, 1)
    went: list[int] = []
    waiting = threading.Thread(target=lambda: _send(locations, 1, went))
    waiting.start()
    time.sleep(0.1)
    assert not went  # waits for the first
    first_is_done(locations)
    waiting.join(5)
    assert went == [1]


def _send(locations: BlobLocations, turn: int, went: list[int]) -> None:
    with locations.sending(str(DIGEST), turn):
        went.append(turn)


class _Bar:
    """What the CLI's bar is told (a bar starts again at 0 when planned)."""

    def __init__(self) -> None:
        self.total = 0
        self.at = 0
        self.blobs = 0

    def planned(self, images: int, blobs: int, size: int) -> None:
        self.total, self.at, self.blobs = size, 0, blobs

    def advanced(self, size: int) -> None:
        self.at += size

    def moved(self, descriptor: object) -> None:
        pass


def test_one_bar_sums_the_repositories_pushed_at_once() -> None:
    from archiver.engine.push import _Summed

    bar = _Bar()
    shared = _Summed(bar)  # type: ignore[arg-type]
    shared.planned(1, 2, 100)
    shared.advanced(40)
    shared.planned(2, 3, 50)  # a second repository begins: the total grows, none is lost
    assert (bar.total, bar.at, bar.blobs) == (150, 40, 5)
    shared.advanced(60)
    assert bar.at == 100


def test_an_interrupt_stops_the_repositories_not_begun() -> None:
    import os
    import signal

    begun: list[int] = []

    def push_one(i: int) -> int:
        begun.append(i)
        if i == 0:
            time.sleep(0.1)  # every repository is queued by then
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, which the main thread gets
        time.sleep(0.2)
        return i

    with pytest.raises(KeyboardInterrupt):
        _each_repository(push_one, 40)
    time.sleep(0.3)
    assert len(begun) < 40  # before, every repository was pushed after an interrupt
