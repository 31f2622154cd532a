"""Settings of single images in one transfer, by name: the platforms each keeps, whose
extras stay behind, the name each is written under. ``sync`` fills them from its lists
(an item's ``platforms``, ``exclude-extras``, Hauler's ``rewrite``); every other verb
leaves them empty and the transfer's own settings hold for every image.

An image is found by any of its names (``REGISTRY/REPO:TAG`` or ``...@DIGEST``) or its
digest (``sha256:...``). Pure values, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from archiver.model.image import ImageEntry
from archiver.model.platform import Platform
from archiver.model.reference import Reference


@dataclass(frozen=True)
class PerImage:
    platforms: Mapping[str, tuple[Platform, ...]] = field(default_factory=dict)
    """The platforms an image keeps, instead of the transfer's."""
    no_extras: frozenset[str] = frozenset()
    """Images whose signatures, attestations, SBOMs and referrers stay behind."""
    names: Mapping[str, Reference] = field(default_factory=dict)
    """The name an image is written under instead of the one it was found by."""

    def platforms_of(
        self, entry: ImageEntry, default: list[Platform] | None
    ) -> list[Platform] | None:
        """What ``entry`` keeps: its own platforms, else ``default`` (None: all)."""
        for key in _keys(entry):
            if key in self.platforms:
                return list(self.platforms[key])
        return default

    def takes_extras(self, entry: ImageEntry) -> bool:
        return not any(key in self.no_extras for key in _keys(entry))

    def renamed(self, entry: ImageEntry) -> ImageEntry:
        """``entry`` under the names it is written with (its digest unchanged)."""
        if not any(str(ref) in self.names for ref in entry.refs):
            return entry
        refs = tuple(dict.fromkeys(self.names.get(str(ref), ref) for ref in entry.refs))
        return replace(entry, refs=refs)


def _keys(entry: ImageEntry) -> list[str]:
    return [str(ref) for ref in entry.refs] + [str(entry.descriptor.digest)]
