"""The plain list (mindthegap's other form): one image reference per line; blank lines and
``#`` comments left out."""

from __future__ import annotations

import re

from archiver.model.sync_lists.spec import SyncList, image_from

_REFERENCE_LINE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")


def lines_of(text: str) -> list[tuple[int, str]]:
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#")
    ]


def looks_like(text: str) -> bool:
    """Every line one word that could be a reference (YAML would read it otherwise)."""
    lines = lines_of(text)
    return bool(lines) and all(
        _REFERENCE_LINE.fullmatch(line) and not line.endswith(":") for _, line in lines
    )


def read(text: str, origin: str) -> SyncList:
    found = SyncList(origin, "image list")
    for number, line in lines_of(text):
        found.images.append(image_from(line, f"{origin}:{number}"))
    return found
