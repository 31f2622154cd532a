"""Validation of every JSON document we read or write against the schemas in ``schemas/``.

(Stub: replaced by the real validator.)
"""

from __future__ import annotations

from typing import Any

KINDS = (
    "oci-manifest",
    "oci-index",
    "image-config",
    "descriptor",
    "oci-layout",
    "docker-manifest",
    "docker-manifest-list",
    "docker-save-manifest",
    "docker-save-repositories",
)


def validate(kind: str, instance: Any, origin: str) -> None:
    """Raise InputError naming ``origin`` and the JSON path when ``instance`` is invalid."""
    return None
