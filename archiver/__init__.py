"""archiver: move and keep container images offline.

The public Python API; the CLI is one face of it.
"""

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
