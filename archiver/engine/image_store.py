"""An archive seen as docker's image store: names point at images, images share layers.

``tag``, ``remove`` (rmi) and ``prune`` follow the rules of the daemon's image store, so the
same steps give the same ``docker images`` listing on an archive as on a daemon:

- a tag names one image; tagging an image with a name another image had moves the name,
  and that image is left dangling (``<none>``) if it had no other;
- removing by name untags; the image goes with its last tag (digest names of the same
  repository go with the last tag of that repository, as docker does);
- removing by ID untags every name and deletes the image, but an image named by more than
  one tag, or in more than one repository, needs ``force``;
- a deleted image releases its layer chains from the top down until one that a remaining
  image still uses (the lines ``docker rmi`` prints);
- prune deletes dangling images; with ``untagged`` also images named only by digest.

Nothing here reads or writes blobs: the store works on resolved documents, and the caller
writes the resulting ``entries()`` (see ``engine.rewrite``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from archiver.engine import catalog, extras
from archiver.engine.catalog import ImageRecord
from archiver.engine.graph import resolve
from archiver.engine.store_index import RootIndex
from archiver.errors import Conflict, InputError, NotFound
from archiver.model.digest import Digest, chain_ids
from archiver.model.image import ImageEntry, ResolvedImage
from archiver.model.reference import Reference
from archiver.places.base import Source

UNTAGGED = "Untagged"
DELETED = "Deleted"


@dataclass(frozen=True)
class Event:
    """One line of what happened: ``Untagged: app:1`` or ``Deleted: sha256:…``."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.name}"


@dataclass(frozen=True)
class ImageUsage:
    record: ImageRecord
    shared: int
    """Bytes of this image's layers that another image uses too."""

    @property
    def unique(self) -> int:
        return self.record.size - self.shared


@dataclass(frozen=True)
class LayerUsage:
    digest: Digest
    size: int
    images: int


@dataclass(frozen=True)
class Usage:
    """What ``df`` shows: images and layers, with what they share."""

    images: list[ImageUsage]
    layers: list[LayerUsage]
    size: int
    """Bytes of every blob the images reference, each once."""
    active: int
    """Tagged images: what ``prune --all`` keeps."""
    reclaimable: int
    """What ``prune`` would free."""
    extras: int = 0
    """Signatures, attestations, SBOMs and referrers beside the images."""
    extras_size: int = 0
    """Bytes of the blobs only they use (counted in ``size``, never as layers)."""


class ImageStore:
    """The images of ``source`` with their names; changes stay in memory until written."""

    def __init__(self, source: Source) -> None:
        self.origin = source.origin
        self.roots: list[ResolvedImage] = [resolve(source, entry) for entry in source.images()]
        self._index: RootIndex | None = None
        """Made when first asked (a tag of one image by name needs none of it)."""

    # -- reading ---------------------------------------------------------------------------

    def records(self) -> list[ImageRecord]:
        """The images as ``ls`` lists them (artifacts, which have no config, left out)."""
        out = []
        for root in self.roots:
            image = root.default_image()
            if image is not None:
                out.append(ImageRecord(root, image))
        return out

    def entries(self) -> list[ImageEntry]:
        """Every entry as it now stands, for writing the archive back."""
        return [root.entry for root in self.roots]

    def blob_sizes(self) -> dict[Digest, int]:
        """Every blob the entries reference, once."""
        return {d.digest: d.size for root in self.roots for d, _ in root.blobs()}

    # -- changing --------------------------------------------------------------------------

    def tag(self, source: str, target: str) -> None:
        """Name the image ``source`` names ``target`` too (moving the name if it was taken)."""
        record = catalog.find(self.records(), source, self.origin)
        ref = Reference.parse(target)
        if ref.digest is not None:
            raise InputError(f"{target}: refusing to create a tag with a digest reference")
        for root in self.roots:
            if root is not record.root and ref in root.entry.refs:
                self._rename(root, tuple(r for r in root.entry.refs if r != ref))
        if ref not in record.root.entry.refs:
            self._rename(record.root, (*record.root.entry.refs, ref))

    def remove(self, wanted: str, force: bool = False) -> list[Event]:
        """``docker rmi wanted``: untag, and delete the image when nothing names it."""
        records = self.records()
        record = catalog.find(records, wanted, self.origin)
        same = self._roots_of(record.id)
        if _names_by_id(records, wanted):
            names = [name for root in same for name in _names(root.entry)]
            if not force and not _single_reference([root.entry for root in same]):
                raise Conflict(
                    f"conflict: unable to delete {record.id.short()} (must be forced) - "
                    f"image is referenced in multiple repositories"
                )
            events = [Event(UNTAGGED, name) for name in dict.fromkeys(names)]
            return events + self._delete(record.id)
        events = self._untag(same, wanted)
        if any(_names(root.entry) for root in same):
            return events
        return events + self._delete(record.id)

    def prune(self, untagged: bool = False) -> list[Event]:
        """Delete dangling images; with ``untagged``, images that have no tag as well."""
        events: list[Event] = []
        for record in self.records():
            if not self._roots_of(record.id):
                continue  # deleted with an image of the same ID
            entries = [root.entry for root in self._roots_of(record.id)]
            if all(entry.dangling for entry in entries):
                events += self._delete(record.id)
            elif untagged and not any(_tagged(entry) for entry in entries):
                names = [name for entry in entries for name in _names(entry)]
                events += [Event(UNTAGGED, name) for name in dict.fromkeys(names)]
                events += self._delete(record.id)
        return events

    # -- measuring -------------------------------------------------------------------------

    def usage(self, stray: int = 0) -> Usage:
        """Sizes as ``docker system df`` reports them; ``stray`` is what the archive holds
        that no image references (``prune`` frees it too)."""
        records = self.records()
        users: Counter[Digest] = Counter()
        sizes: dict[Digest, int] = {}
        extra_roots = [root for root in self.roots if extras.extra_of_root(root) is not None]
        extra_ids = {id(root) for root in extra_roots}  # not ``in``: roots compare deeply
        images_only = [root for root in self.roots if id(root) not in extra_ids]
        for root in images_only:
            layers = {d.digest: d.size for node in root.images for d in node.manifest.layers}
            users.update(layers.keys())
            sizes.update(layers)
        images = [
            ImageUsage(
                record,
                sum(d.size for d in record.image.manifest.layers if users[d.digest] > 1),
            )
            for record in records
        ]
        dangling = [r for r in records if r.entry.dangling]
        kept = {d.digest for root in self.roots if not root.entry.dangling for d, _ in root.blobs()}
        freed = {
            d.digest: d.size for r in dangling for d, _ in r.root.blobs() if d.digest not in kept
        }
        of_images = {d.digest for root in images_only for d, _ in root.blobs()}
        of_extras = {d.digest: d.size for root in extra_roots for d, _ in root.blobs()}
        return Usage(
            images=images,
            layers=[LayerUsage(d, sizes[d], users[d]) for d in sizes],
            size=sum(self.blob_sizes().values()) + stray,
            active=sum(1 for r in records if not r.entry.dangling),
            reclaimable=sum(freed.values()) + stray,
            extras=len(extra_roots),
            extras_size=sum(n for d, n in of_extras.items() if d not in of_images),
        )

    # -- inside ----------------------------------------------------------------------------

    @property
    def _indexed(self) -> RootIndex:
        if self._index is None:
            self._index = RootIndex(self.roots)
        return self._index

    def _roots_of(self, image_id: Digest) -> list[ResolvedImage]:
        return self._indexed.roots_of(image_id)

    def _rename(
        self, root: ResolvedImage, refs: tuple[Reference, ...], tags: tuple[str, ...] | None = None
    ) -> None:
        entry = root.entry
        root.entry = replace(entry, refs=refs, tags=entry.tags if tags is None else tags)

    def _untag(self, roots: list[ResolvedImage], wanted: str) -> list[Event]:
        for root in roots:
            if wanted in root.entry.tags:
                kept_tags = tuple(t for t in root.entry.tags if t != wanted)
                self._rename(root, root.entry.refs, kept_tags)
                return [Event(UNTAGGED, wanted)]
        ref = Reference.parse(wanted)
        events = self._drop(roots, lambda r: _same(r, ref))
        if not events:
            raise NotFound(f"{self.origin}: no image {ref.familiar()}")
        if ref.digest is None and not any(
            r.name == ref.name and r.digest is None for root in roots for r in root.entry.refs
        ):
            # the repository's last tag is gone: its digest names go with it
            events += self._drop(roots, lambda r: r.name == ref.name)
        return events

    def _drop(self, roots: list[ResolvedImage], gone: Callable[[Reference], bool]) -> list[Event]:
        events = []
        for root in roots:
            events += [Event(UNTAGGED, r.familiar()) for r in root.entry.refs if gone(r)]
            self._rename(root, tuple(r for r in root.entry.refs if not gone(r)))
        return events

    def _delete(self, image_id: Digest) -> list[Event]:
        index = self._indexed
        gone = self._roots_of(image_id)
        leaving = {id(g) for g in gone}
        before, self.roots = self.roots, [root for root in self.roots if id(root) not in leaving]
        extras_gone: list[Digest] = []
        if index.has_extras:  # an archive without extras has none to drop with an image
            self.roots, extras_gone = extras.without_extras_of(gone, self.roots)
        staying = {id(root) for root in self.roots}
        index.leave(root for root in before if id(root) not in staying)
        events = [Event(DELETED, str(image_id))]
        image = gone[0].default_image()
        assert image is not None and image.config is not None
        for chain in reversed(chain_ids(image.config.diff_ids)):
            if index.in_use(chain):
                break  # docker releases chains from the top until one is still in use
            events.append(Event(DELETED, chain))
        return events + [Event(DELETED, str(digest)) for digest in extras_gone]


def _names(entry: ImageEntry) -> list[str]:
    return [r.familiar() for r in entry.refs] + list(entry.tags)


def _tagged(entry: ImageEntry) -> bool:
    return bool(entry.tags) or any(r.digest is None for r in entry.refs)


def _same(ref: Reference, wanted: Reference) -> bool:
    if wanted.digest is not None:
        return ref.name == wanted.name and ref.digest == wanted.digest
    return ref.name == wanted.name and ref.tag == wanted.tag and ref.digest is None


def _names_by_id(records: list[ImageRecord], wanted: str) -> bool:
    """Whether ``wanted`` names an image by ID (or manifest digest) rather than by name,
    the way ``catalog.find_all`` decides it."""
    text = wanted.removeprefix("sha256:")
    if not text or any(c not in "0123456789abcdef" for c in text):
        return False
    return any(r.id.hex.startswith(text) for r in records) or (
        len(text) == 64 and any(r.digest is not None and r.digest.hex == text for r in records)
    )


def _single_reference(entries: list[ImageEntry]) -> bool:
    """Docker's test for deleting by ID without force: every name in one repository, and
    at most one of them a tag (the others digests)."""
    refs = [r for entry in entries for r in entry.refs]
    bare = [t for entry in entries for t in entry.tags]
    repositories = {r.name for r in refs} | ({""} if bare else set())
    tags = sum(1 for r in refs if r.digest is None) + len(bare)
    return len(repositories) <= 1 and tags <= 1
