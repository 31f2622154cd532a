"""archiver: move and keep container images offline.

The public Python API; the CLI is one face of it. The names below are imported when first
used (``archiver.copy``, ``from archiver import verify``): a command pays at start for
the modules it runs, not for the whole API (``archiver sync`` with nothing new is mostly
start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archiver.engine.catalog import ImageRecord, records
    from archiver.engine.copy import CopyReport, copy
    from archiver.engine.verify import VerifyReport, verify
    from archiver.errors import (
        ArchiverError,
        Conflict,
        InputError,
        IntegrityError,
        NotFound,
        PeerError,
    )
    from archiver.model.descriptor import Descriptor
    from archiver.model.digest import Digest
    from archiver.model.documents import ImageConfig, Index, Manifest
    from archiver.model.platform import Platform
    from archiver.model.reference import Reference
    from archiver.places.archive import ArchiveSource, open_source
    from archiver.places.layout_writer import DirLayoutSink, TarLayoutSink, open_sink

__version__ = "0.1.0"

_API = {
    "ImageRecord": "archiver.engine.catalog",
    "records": "archiver.engine.catalog",
    "CopyReport": "archiver.engine.copy",
    "copy": "archiver.engine.copy",
    "VerifyReport": "archiver.engine.verify",
    "verify": "archiver.engine.verify",
    "ArchiverError": "archiver.errors",
    "Conflict": "archiver.errors",
    "InputError": "archiver.errors",
    "IntegrityError": "archiver.errors",
    "NotFound": "archiver.errors",
    "PeerError": "archiver.errors",
    "Descriptor": "archiver.model.descriptor",
    "Digest": "archiver.model.digest",
    "ImageConfig": "archiver.model.documents",
    "Index": "archiver.model.documents",
    "Manifest": "archiver.model.documents",
    "Platform": "archiver.model.platform",
    "Reference": "archiver.model.reference",
    "ArchiveSource": "archiver.places.archive",
    "open_source": "archiver.places.archive",
    "DirLayoutSink": "archiver.places.layout_writer",
    "TarLayoutSink": "archiver.places.layout_writer",
    "open_sink": "archiver.places.layout_writer",
}
"""Public name -> the module that defines it."""


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'archiver' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = [
    "ArchiveSource",
    "ArchiverError",
    "Conflict",
    "CopyReport",
    "Descriptor",
    "Digest",
    "DirLayoutSink",
    "ImageConfig",
    "ImageRecord",
    "Index",
    "InputError",
    "IntegrityError",
    "Manifest",
    "NotFound",
    "PeerError",
    "Platform",
    "Reference",
    "TarLayoutSink",
    "VerifyReport",
    "__version__",
    "copy",
    "open_sink",
    "open_source",
    "records",
    "verify",
]
