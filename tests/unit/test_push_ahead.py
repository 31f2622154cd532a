"""Compressing a push's plain layers ahead (engine.push_ahead) from a real docker-save tar."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from archiver.blobs.block_compress import GZIP
from archiver.engine.push_ahead import Ahead, Spool
from archiver.engine.push_compress import compress_layer
from archiver.errors import IntegrityError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.places.archive import open_source
from tests.factory import docker_save, random_layer


def _layers(tmp_path: Path, sizes: list[int]) -> tuple[Path, list[Descriptor]]:
    blobs = [random_layer(size, seed=i) for i, size in enumerate(sizes)]
    tar = docker_save(tmp_path / "save.tar", [(["a/b:1"], blobs)])
    found = [
        Descriptor(media.DOCKER_LAYER_TAR, Digest.parse(f"sha256:{_hex(b)}"), len(b)) for b in blobs
    ]
    return tar, found


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Counting:
    """compress_layer, counting the layers it was given (and able to hold them back)."""

    def __init__(self) -> None:
        self.seen: list[Digest] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, plain: Descriptor, opener: object, spool: Spool) -> Descriptor:
        self.gate.wait(10)
        self.seen.append(plain.digest)
        return compress_layer(plain, opener, spool, GZIP)  # type: ignore[arg-type]


def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the thread did not get there")


def test_layers_taken_are_those_compressed_inline(tmp_path: Path) -> None:
    tar, layers = _layers(tmp_path, [300_000, 5_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        ahead = Ahead(source, [(layers[0], 0), (layers[1], 1)], counting)
        ahead.start()
        _until(lambda: len(counting.seen) == 2)  # else a take before the thread claims it
        for layer in layers:
            spool = ahead.take(layer.digest)
            assert spool is not None and spool.result is not None
            with Spool() as inline:
                expected = compress_layer(
                    layer, lambda d=layer: source.open_blob(d.digest), inline, GZIP
                )
            assert spool.result == expected
            with spool, spool.reader(expected) as read:
                assert _hex(read.read()) == expected.digest.hex
        ahead.close()
        assert ahead.compressed == 2


def test_a_layer_claimed_first_is_left_to_the_repository(tmp_path: Path) -> None:
    tar, layers = _layers(tmp_path, [10_000, 10_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        ahead = Ahead(source, [(layers[0], 0), (layers[1], 0)], counting)
        assert ahead.take(layers[0].digest) is None  # no thread yet: the caller compresses it
        ahead.start()
        _until(lambda: len(counting.seen) == 1)
        assert ahead.take(layers[1].digest) is not None
        ahead.close()
        assert counting.seen == [layers[1].digest]
        assert ahead.take(layers[0].digest) is None


def test_at_most_the_budget_is_compressed_ahead(tmp_path: Path) -> None:
    tar, layers = _layers(tmp_path, [20_000, 20_000, 20_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        ahead = Ahead(source, [(d, i) for i, d in enumerate(layers)], counting, budget=30_000)
        ahead.start()
        _until(lambda: len(counting.seen) == 1)
        first = ahead.take(layers[0].digest)  # waits for the first, frees its share
        assert first is not None
        first.close()
        _until(lambda: len(counting.seen) == 2)
        second = ahead.take(layers[1].digest)
        assert second is not None
        ahead.done_with(1)  # the second repository ended: the third may go on
        _until(lambda: len(counting.seen) == 3)
        assert ahead.take(layers[2].digest) is not None
        ahead.close()
        assert counting.seen == [d.digest for d in layers]


def test_the_budget_holds_one_layer_back(tmp_path: Path) -> None:
    tar, layers = _layers(tmp_path, [20_000, 20_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        ahead = Ahead(source, [(d, 0) for d in layers], counting, budget=30_000)
        ahead.start()
        _until(lambda: bool(counting.seen))
        threading.Event().wait(0.2)
        assert counting.seen == [layers[0].digest]  # the second waits for room
        ahead.close()


def test_a_corrupt_layer_fails_the_repository_that_takes_it(tmp_path: Path) -> None:
    tar, layers = _layers(tmp_path, [50_000])
    data = bytearray(tar.read_bytes())
    at = data.find(random_layer(50_000, seed=0)[1000:1100])
    data[at] ^= 0xFF
    tar.write_bytes(bytes(data))
    with open_source(str(tar)) as source:
        counting = _Counting()
        ahead = Ahead(source, [(layers[0], 0)], counting)
        ahead.start()
        _until(lambda: len(counting.seen) == 1)
        with pytest.raises(IntegrityError, match=layers[0].digest.hex):
            ahead.take(layers[0].digest)
        ahead.close()


def test_close_drops_what_was_not_taken(tmp_path: Path) -> None:
    tar, layers = _layers(tmp_path, [20_000, 20_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        ahead = Ahead(source, [(d, 0) for d in layers], counting)
        ahead.start()
        _until(lambda: len(counting.seen) >= 1)
        spool = ahead.take(layers[0].digest)
        assert spool is not None
        name = spool.file.name
        spool.close()
        assert not os.path.exists(name)
        ahead.close()
        assert ahead.take(layers[1].digest) is None


def test_a_layer_finished_after_its_repository_ended_is_dropped(tmp_path: Path) -> None:
    tar, layers = _layers(tmp_path, [20_000, 20_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        counting.gate.clear()  # the first layer is held back until its repository ended
        ahead = Ahead(source, [(layers[0], 0), (layers[1], 1)], counting, budget=30_000)
        ahead.start()
        threading.Event().wait(0.1)
        ahead.done_with(0)
        counting.gate.set()
        _until(lambda: len(counting.seen) == 2)  # its share freed: the next one went on
        assert ahead.take(layers[0].digest) is None
        ahead.close()


def test_a_repository_waits_for_the_thread_rather_than_compressing_beside_it(
    tmp_path: Path,
) -> None:
    tar, layers = _layers(tmp_path, [30_000, 10_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        counting.gate.clear()  # the thread is held on the first (largest) layer
        ahead = Ahead(source, [(layers[0], 0), (layers[1], 1)], counting)
        ahead.start()
        taken: list[Spool | None] = []
        waiter = threading.Thread(target=lambda: taken.append(ahead.take(layers[1].digest)))
        waiter.start()
        threading.Event().wait(0.2)
        assert not taken  # the second repository waits for its turn, all cores on the first
        counting.gate.set()
        waiter.join(10)
        assert taken and taken[0] is not None and taken[0].result is not None
        taken[0].close()
        ahead.close()
        assert counting.seen == [layers[0].digest, layers[1].digest]


def test_a_repository_compresses_its_own_while_the_thread_waits_for_room(
    tmp_path: Path,
) -> None:
    tar, layers = _layers(tmp_path, [20_000, 20_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        ahead = Ahead(source, [(layers[0], 0), (layers[1], 1)], counting, budget=30_000)
        ahead.start()
        _until(lambda: len(counting.seen) == 1)  # the first is held, untaken: no room
        assert ahead.take(layers[1].digest) is None  # so the second is left to its caller
        ahead.close()
        assert counting.seen == [layers[0].digest]


def test_the_largest_layers_are_compressed_first(tmp_path: Path) -> None:
    tar, layers = _layers(tmp_path, [5_000, 40_000, 20_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        ahead = Ahead(source, [(d, 0) for d in layers], counting)
        ahead.start()
        _until(lambda: len(counting.seen) == 3)
        ahead.close()
        assert counting.seen == [layers[1].digest, layers[2].digest, layers[0].digest]


def test_repositories_may_end_in_any_order(tmp_path: Path) -> None:
    tar, layers = _layers(tmp_path, [20_000, 10_000])
    with open_source(str(tar)) as source:
        counting = _Counting()
        ahead = Ahead(source, [(layers[0], 0), (layers[1], 1)], counting)
        ahead.start()
        _until(lambda: len(counting.seen) == 2)
        ahead.done_with(1)  # the second ended first: the first's layer is still kept for it
        spool = ahead.take(layers[0].digest)
        assert spool is not None
        spool.close()
        assert ahead.take(layers[1].digest) is None  # dropped with its repository
        ahead.close()
