"""How a sync into a bundle shares out the images it fetches at once."""

from __future__ import annotations

from archiver.blobs.zstd_writer import ZstdOptions
from archiver.engine.sync_fetch import share_out, threads_each
from archiver.engine.sync_plan import Wanted
from archiver.model.reference import Reference
from archiver.model.sync_lists import ImageSpec, TagFilter


def item(name: str) -> Wanted:
    return Wanted(Reference.parse(name), ImageSpec("x", TagFilter(), "l.yaml"))


def test_one_repository_in_one_share_and_at_most_jobs_shares() -> None:
    items = [item(n) for n in ["r.io/a:1", "r.io/b:1", "r.io/a:2", "r.io/c:1", "r.io/d:1"]]
    shares = share_out(items, 3)
    assert len(shares) == 3
    assert sorted(i.name for share in shares for i in share) == sorted(i.name for i in items)
    [with_a] = [share for share in shares if any(i.ref.repository == "a" for i in share)]
    assert {i.name for i in with_a} >= {"r.io/a:1", "r.io/a:2"}
    assert len(share_out(items, 1)) == 1
    assert len(share_out(items[:1], 4)) == 1
    assert share_out([], 4) == []


def test_the_zstd_threads_are_shared_out() -> None:
    assert threads_each(ZstdOptions(level=9, threads=8), 4) == ZstdOptions(level=9, threads=2)
    assert threads_each(ZstdOptions(threads=2), 4).threads == 1
    assert threads_each(None, 1).threads >= 1
