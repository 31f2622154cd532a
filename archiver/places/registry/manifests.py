"""What is asked of a registry for a manifest, and what its HEAD answers: the media types
accepted, and the digest, media type and size the answer states. Shared by the API calls
(``api``) and the plain HEADs (``heads``); imports no HTTP client."""

from __future__ import annotations

import re
from dataclasses import dataclass

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_LENGTH = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class Head:
    """What a manifest HEAD says of a tag: the digest, media type and size it names."""

    digest: str
    media_type: str
    size: int


def stated_head(digest: str, length: str, content_type: str) -> Head | None:
    """The manifest a HEAD's answer names, when its headers (``Docker-Content-Digest``,
    ``Content-Length``, ``Content-Type``) state its digest and size."""
    if _DIGEST.fullmatch(digest) and _LENGTH.fullmatch(length):
        return Head(digest, content_type.split(";")[0].strip(), int(length))
    return None
