"""What ``ImageStore`` asks of its images again and again, found once and kept up to date
as images leave: which images have an ID, which layer chains are still used, whether
any image is an extra. ``prune`` of an archive of 2,000 images asked every image for
these once per image it looked at, or deleted (25 s; now each image is asked once).

A root's images never change while the store lives (only its names do), so what is
found of a root stays true until the root leaves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from archiver.engine.extras import extra_of_root
from archiver.model.digest import Digest, chain_ids
from archiver.model.image import ResolvedImage


class RootIndex:
    """The roots of a store by image ID, and the layer chains they use (counted)."""

    def __init__(self, roots: Iterable[ResolvedImage]) -> None:
        self._by_id: dict[Digest, list[ResolvedImage]] = {}
        self._chains: dict[int, list[str]] = {}
        self._users: Counter[str] = Counter()
        self.has_extras = False
        """Whether any root is an extra (a signature, an attestation...) of another."""
        for root in roots:
            found = image_id(root)
            if found is not None:
                self._by_id.setdefault(found, []).append(root)
            self._chains[id(root)] = chains = _chains(root)
            self._users.update(chains)
            self.has_extras = self.has_extras or extra_of_root(root) is not None

    def roots_of(self, found: Digest) -> list[ResolvedImage]:
        """The roots whose image has this ID, in the store's order."""
        return list(self._by_id.get(found, ()))

    def in_use(self, chain: str) -> bool:
        """Whether an image still in the store uses this layer chain."""
        return self._users[chain] > 0

    def leave(self, roots: Iterable[ResolvedImage]) -> None:
        """``roots`` are no longer in the store."""
        for root in roots:
            found = image_id(root)
            if found is not None:
                same = self._by_id.get(found, [])
                same[:] = [r for r in same if r is not root]
            self._users.subtract(self._chains.pop(id(root)))


def image_id(root: ResolvedImage) -> Digest | None:
    """The ID of the image ``docker images`` shows for ``root`` (None: an artifact)."""
    image = root.default_image()
    return image.config.id if image is not None and image.config is not None else None


def _chains(root: ResolvedImage) -> list[str]:
    return [
        chain
        for node in root.images
        if node.config is not None
        for chain in chain_ids(node.config.diff_ids)
    ]
