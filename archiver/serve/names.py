"""Which image each served name points at: names without their registry host, under
``--prefix``; two images taking one name refused (both named) unless ``prefer`` says which
input wins; an image a delta names wins over the one its base gives the same name.

Only the inputs' lists of images are read here (no document): names are settled before the
server listens, and cost nothing per image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from archiver.errors import Conflict, InputError
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry
from archiver.model.reference import Reference
from archiver.serve.inputs import Served

PREFER = ("error", "first", "last")


@dataclass(frozen=True)
class Claim:
    """One name an input gives an image: ``repository`` (prefixed, no host) and ``tag``
    (None for a name by digest only)."""

    repository: str
    tag: str | None
    position: int
    """Which served input (its place on the command line)."""
    entry: ImageEntry
    full: str

    @property
    def digest(self) -> Digest:
        return self.entry.descriptor.digest


def checked_prefix(prefix: str) -> str:
    """``NS/`` for ``--prefix NS`` (a repository path), or empty."""
    prefix = prefix.strip("/")
    if not prefix:
        return ""
    try:
        Reference.parse(f"example.invalid/{prefix}")
    except InputError as exc:
        raise InputError(f"--prefix {prefix!r}: not a repository path ({exc})") from None
    return prefix + "/"


def claims(
    served: Sequence[Served], prefix: str
) -> tuple[list[Claim], list[tuple[int, ImageEntry]]]:
    """Every name of every input's images, and the images without a name (by input)."""
    found: list[Claim] = []
    unnamed: list[tuple[int, ImageEntry]] = []
    for position, item in enumerate(served):
        for entry in item.source.images():
            if not entry.refs:
                unnamed.append((position, entry))
            for ref in entry.refs:
                found.append(
                    Claim(prefix + ref.repository, ref.tag, position, entry, ref.familiar())
                )
    return found, unnamed


def settle(found: list[Claim], served: Sequence[Served], prefer: str) -> list[Claim]:
    """The claims that keep their name: one image per repository:tag."""
    if prefer not in PREFER:
        raise InputError(f"--prefer {prefer!r}: one of {', '.join(PREFER)}")
    by_name: dict[tuple[str, str | None], list[Claim]] = {}
    for claim in found:
        by_name.setdefault((claim.repository, claim.tag), []).append(claim)
    kept: list[Claim] = []
    clashes: list[str] = []
    for (repository, tag), group in by_name.items():
        if tag is None:  # names by digest only: every image keeps its own
            kept.extend(group)
            continue
        if any(served[c.position].delta for c in group):  # a delta's image wins over its base's
            group = [c for c in group if served[c.position].delta]
        if len({c.digest for c in group}) > 1 and prefer == "error":
            other = next(c for c in group if c.digest != group[0].digest)
            clashes.append(
                f"{repository}:{tag} would be {_said(group[0], served)} and {_said(other, served)}"
            )
            continue
        chosen = group[-1] if prefer == "last" else group[0]
        kept.extend(c for c in group if c.digest == chosen.digest)
    if clashes:
        raise Conflict("two images take one name: " + "; ".join(clashes) + " (--prefer first|last)")
    return kept


def _said(claim: Claim, served: Sequence[Served]) -> str:
    origin = served[claim.position].source.origin
    return f"{claim.full} ({claim.digest.short()}) in {origin}"
