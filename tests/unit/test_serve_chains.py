"""The shared hash chains of serve stay bounded: a frame decoded again gets a new serial,
so without a bound a long-running server's chains would grow with its traffic."""

from __future__ import annotations

import hashlib

import pytest

from archiver.model.digest import Digest
from archiver.serve import chains


def test_chains_are_let_go_past_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chains, "MOST_NODES", 10)
    kept = chains.Chains()
    digest = Digest.parse("sha256:" + hashlib.sha256(b"x" * 4).hexdigest())
    first = kept.root(digest, 4)
    node = first
    for serial in range(5):  # one answer's frames: shared from the same root
        node = kept.step(node, serial, b"x")
    assert kept.root(digest, 4) is first
    for serial in range(100, 110):  # frames decoded again: new serials, new nodes
        node = kept.step(first, serial, b"x")
    assert kept.root(digest, 4) is not first  # let go: later answers start afresh
    assert node.hasher.hexdigest() == hashlib.sha256(b"x").hexdigest()  # in flight: intact
