"""What a destination already holds, and so which layers it can do without: the one rule
used by every writer that sends less (a delta against a base, a load into a daemon, an
inventory taken on the far side of an air gap).

A destination knows a layer by its blob digest, by its uncompressed digest (diff_id: a
registry or an archive holding the same content compressed otherwise), or by its layer
chain (a daemon: it looks a layer up by the chain of diff_ids below and including it, so
the same diff_id on another parent is not held).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest, chain_ids
from archiver.model.image import ImageNode, ResolvedImage


@dataclass(frozen=True)
class LayerUse:
    """One layer as one platform image uses it: with its diff_id and layer chain when the
    image's config gives them (an artifact's "layers" have neither)."""

    layer: Descriptor
    diff_id: str | None
    chain: str | None


def layer_uses(node: ImageNode) -> Iterator[LayerUse]:
    """Every layer of ``node`` with its diff_id and chain ID, bottom up."""
    layers = node.manifest.layers
    diff_ids = node.config.diff_ids if node.config is not None else ()
    if len(diff_ids) != len(layers):
        for layer in layers:
            yield LayerUse(layer, None, None)
        return
    for layer, diff_id, chain in zip(layers, diff_ids, chain_ids(diff_ids), strict=True):
        yield LayerUse(layer, str(diff_id), chain)


def image_chains(node: ImageNode) -> list[str]:
    """The layer chains of an image, bottom up (none for an artifact)."""
    return [use.chain for use in layer_uses(node) if use.chain is not None]


@dataclass(frozen=True)
class Holdings:
    """What a destination holds, as far as it can say: blob digests, diff_ids, chains."""

    blobs: frozenset[str] = frozenset()
    diff_ids: frozenset[str] = frozenset()
    chains: frozenset[str] = frozenset()

    def holds(self, use: LayerUse) -> bool:
        return (
            str(use.layer.digest) in self.blobs
            or (use.diff_id is not None and use.diff_id in self.diff_ids)
            or (use.chain is not None and use.chain in self.chains)
        )

    def held_layers(self, images: Iterable[ResolvedImage]) -> dict[Digest, int]:
        """Layer digest -> size of every layer of ``images`` the destination can do
        without: held for every image that uses it (a layer one image finds by its chain
        and another needs on another parent is sent)."""
        held: dict[Digest, int] = {}
        needed: set[Digest] = set()
        for image in images:
            for node in image.images:
                for use in layer_uses(node):
                    if self.holds(use):
                        held[use.layer.digest] = use.layer.size
                    else:
                        needed.add(use.layer.digest)
        return {digest: size for digest, size in held.items() if digest not in needed}
