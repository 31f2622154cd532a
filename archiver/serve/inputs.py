"""The PATHs given to ``serve`` as one Source: archives, bundles, split bundles and OCI
directories, merged; a delta served on top of the base beside it.

Opened through the engine (``open_place``, ``MultiSource``, ``WithBase``), as every verb
opens its inputs: the serve face never reads a file itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from archiver.engine.graph import resolve
from archiver.engine.merge import MultiSource, WithBase
from archiver.engine.opening import open_place
from archiver.errors import InputError
from archiver.places.base import Source
from archiver.places.oci_layout import DELTA_BASE, DELTA_BASE_ORIGIN
from archiver.places.transports import Place


@dataclass(frozen=True)
class Served:
    """One PATH as served: its source, and whether it is a delta (whose names win over
    those of the base it completes from)."""

    source: Source
    delta: bool


def delta_base(source: Source) -> str | None:
    """How a delta names its base (origin and checksum); None for a complete archive."""
    checksum = source.annotations.get(DELTA_BASE)
    if checksum is None:
        return None
    return f"{source.annotations.get(DELTA_BASE_ORIGIN, 'its base')} ({checksum})"


@contextlib.contextmanager
def open_inputs(paths: Sequence[str]) -> Iterator[list[Served]]:
    """Every PATH opened (a bad one fails here, before anything listens); a delta completed
    from the complete archives among the PATHs."""
    if not paths:
        raise InputError("serve: name at least one archive, bundle or OCI directory")
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(open_place(Place(path), reuse_frames=True)) for path in paths]
        complete = [s for s in opened if delta_base(s) is None]
        sources: list[Served] = []
        for source in opened:
            base = delta_base(source)
            if base is None:
                sources.append(Served(source, False))
                continue
            if not complete:
                raise InputError(
                    f"{source.origin}: a delta made against {base}; that base is not among "
                    f"the paths served (name it too)"
                )
            bases = complete[0] if len(complete) == 1 else MultiSource(complete, "first")
            with_base = WithBase(source, bases)
            _check_complete(with_base, base)
            sources.append(Served(with_base, True))
        yield sources


def _check_complete(source: Source, base: str) -> None:
    """Every blob the delta's images need is in the delta or the bases served beside it."""
    for entry in source.images():
        root = resolve(source, entry)
        for descriptor, data in root.blobs():
            if data is None and not source.has_blob(descriptor.digest):
                raise InputError(
                    f"{source.origin}: {entry.label} needs blob {descriptor.digest}, in "
                    f"neither the delta nor the paths beside it: serve it with its base {base}"
                )
