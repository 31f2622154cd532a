"""Descriptors: what a document says about another blob (type, digest, size, ...)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from archiver.errors import InputError
from archiver.model.digest import Digest
from archiver.model.platform import Platform


@dataclass(frozen=True, eq=False, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, data: Any, where: str = "descriptor") -> Descriptor:
        """Build from an already schema-checked JSON object; ``where`` names it in errors."""
        if not isinstance(data, dict):
            raise InputError(f"{where}: not a descriptor object")
        try:
            digest = Digest.parse(data["digest"])
            size = data["size"]
            media_type = data.get("mediaType", "")
            if isinstance(media_type, str):  # a handful of types, named by every descriptor
                media_type = sys.intern(media_type)
        except KeyError as exc:
            raise InputError(f"{where}: descriptor lacks {exc.args[0]!r}") from None
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InputError(f"{where}: invalid size {size!r}")
        platform = data.get("platform")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            platform=Platform.from_json(platform) if isinstance(platform, dict) else None,
            annotations=dict(data.get("annotations") or {}),
            urls=tuple(data.get("urls") or ()),
            artifact_type=data.get("artifactType"),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in the order the OCI spec lists them."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    def with_annotations(self, annotations: dict[str, str]) -> Descriptor:
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            self.platform,
            dict(annotations),
            self.urls,
            self.artifact_type,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Descriptor):
            return NotImplemented
        return (self.media_type, self.digest, self.size) == (
            other.media_type,
            other.digest,
            other.size,
        )

    def __hash__(self) -> int:
        return hash((self.media_type, self.digest, self.size))
