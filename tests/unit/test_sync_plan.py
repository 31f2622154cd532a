"""How a sync sorts what the lists name against what its earlier output holds."""

from __future__ import annotations

from archiver.engine.sync_plan import Plan, Wanted, against_archive
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry
from archiver.model.reference import Reference
from archiver.model.sync_lists import ImageSpec, TagFilter

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest(n: int) -> Digest:
    return Digest.parse("sha256:" + f"{n:064x}")


def wanted(name: str, n: int) -> Wanted:
    spec = ImageSpec("reg.example.com/x", TagFilter(), "list.yaml")
    return Wanted(Reference.parse(name), spec, Descriptor(MANIFEST, digest(n), 10))


def held(n: int, *names: str) -> ImageEntry:
    return ImageEntry(Descriptor(MANIFEST, digest(n), 10), tuple(Reference.parse(x) for x in names))


def test_added_updated_kept_and_no_longer_listed() -> None:
    items = [
        wanted("reg.example.com/a:1", 1),  # same digest: kept
        wanted("reg.example.com/a:2", 5),  # moved: updated
        wanted("reg.example.com/b:1", 3),  # new: added
        wanted(f"reg.example.com/c@{digest(4)}", 4),  # by digest, held: kept
    ]
    out = [
        held(1, "reg.example.com/a:1"),
        held(2, "reg.example.com/a:2", "reg.example.com/gone:1"),
        held(4),
    ]
    plan = Plan()
    against_archive(items, out, prune=False, plan=plan)
    assert [w.name for w in plan.kept] == ["reg.example.com/a:1", f"reg.example.com/c@{digest(4)}"]
    assert [w.name for w in plan.updated] == ["reg.example.com/a:2"]
    assert [w.name for w in plan.added] == ["reg.example.com/b:1"]
    assert plan.held_back == ["reg.example.com/gone:1"] and plan.removed == []
    assert plan.changed

    pruned = Plan()
    against_archive(items, out, prune=True, plan=pruned)
    assert pruned.removed == ["reg.example.com/gone:1"] and pruned.held_back == []


def test_nothing_changed_and_no_output_yet() -> None:
    items = [wanted("reg.example.com/a:1", 1)]
    same = Plan()
    against_archive(items, [held(1, "reg.example.com/a:1")], prune=True, plan=same)
    assert not same.changed and [w.name for w in same.kept] == ["reg.example.com/a:1"]
    fresh = Plan()
    against_archive(items, None, prune=False, plan=fresh)
    assert [w.name for w in fresh.added] == ["reg.example.com/a:1"]
