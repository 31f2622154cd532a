"""Writers of the OCI layout: as a directory, as a tar, and as the hybrid docker-save tar.

The hybrid is an OCI layout with a docker ``manifest.json`` beside it: ``docker load``
(20.10 and later) reads the latter; skopeo, containerd and Docker ≥ 25 read the former.
Blobs are written once each; nothing is visible at the target name until ``commit``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from archiver.blobs import limits, tar_members
from archiver.blobs.atomic import SyncingFile, output_path, temp_beside, umask
from archiver.blobs.frame_fill import FillingWriter
from archiver.blobs.parts import Split, SplitWriter
from archiver.blobs.tarwriter import TarWriter
from archiver.blobs.zstd_writer import DEFAULT_FRAME_SIZE, SeekableWriter, ZstdOptions
from archiver.errors import Conflict, InputError
from archiver.model import extras, media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import dump_json
from archiver.model.image import ResolvedImage, write_order
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.places.base import InFrames, Precompressed, Sink
from archiver.places.docker_save import MANIFEST_FILE
from archiver.places.oci_layout import (
    INDEX_FILE,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    blob_path,
    index_annotations,
)


class LayoutDocuments:
    """The names of a layout being written: ``index.json``, and ``manifest.json`` for the hybrid."""

    def __init__(
        self,
        annotations: dict[str, str] | None = None,
        renamed: dict[Digest, Digest] | None = None,
    ) -> None:
        self._index: list[dict[str, Any]] = []
        self._docker: dict[Digest, dict[str, Any]] = {}
        self._annotations = annotations or {}
        self._renamed = renamed or {}

    def add(self, root: ResolvedImage) -> None:
        descriptor = root.descriptor
        names: list[tuple[Reference | None, str | None]] = [(r, None) for r in root.entry.refs]
        names += [(None, t) for t in root.entry.tags]
        tags = [r.tag for r in root.entry.refs if r.tag] + list(root.entry.tags)
        extra = extras.of_entry(root.entry.descriptor, root.document, tags)
        marks = extra.annotations() if extra is not None else {}
        if extra is not None and extra.artifact_type:
            descriptor = root.document.descriptor(artifact_type=extra.artifact_type)
        for ref, tag in names or [(None, None)]:
            annotations = index_annotations(ref, tag) | marks
            self._index.append(descriptor.with_annotations(annotations).to_json())
        shown = root.default_image(Platform.host())
        for node in root.images:
            if node.config is None:
                continue
            item = self._docker.get(node.manifest.config.digest)
            if item is None:
                item = self._docker_item(
                    node.manifest.config, node.manifest.layers, node.config.diff_ids
                )
                self._docker[node.manifest.config.digest] = item
            if node is shown:
                for ref in root.entry.refs:
                    if ref.tag and ref.familiar() not in item["RepoTags"]:
                        item["RepoTags"].append(ref.familiar())

    def _docker_item(
        self, config: Descriptor, layers: tuple[Descriptor, ...], diff_ids: tuple[Digest, ...]
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "Config": blob_path(config.digest),
            "RepoTags": [],
            "Layers": [
                blob_path(self._renamed.get(layer.digest, layer.digest)) for layer in layers
            ],
        }
        foreign = {
            str(diff_id): layer.to_json()
            for layer, diff_id in zip(layers, diff_ids, strict=True)
            if media.is_foreign(layer.media_type)
        }
        if foreign:
            item["LayerSources"] = foreign
        return item

    def layout(self) -> bytes:
        return dump_json({"imageLayoutVersion": LAYOUT_VERSION})

    def index(self) -> bytes:
        index: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media.OCI_INDEX,
            "manifests": self._index,
        }
        if self._annotations:
            index["annotations"] = self._annotations
        return dump_json(index)

    def docker_manifest(self) -> bytes:
        items = []
        for item in self._docker.values():
            out = dict(item)
            out["RepoTags"] = item["RepoTags"] or None
            items.append(out)
        return dump_json(items)


class TarLayoutSink(Sink):
    """An OCI layout in a tar (``oci-archive``), plus ``manifest.json`` when ``docker=True``.

    The head comes first (``oci-layout``, ``index.json``, ``manifest.json``, then every
    document), layers after. With ``zstd`` options the tar is written as a seekable zstd
    bundle, each layer starting a new frame. ``-`` writes to standard output.
    """

    def __init__(
        self,
        target: str | BinaryIO,
        docker: bool = True,
        zstd: ZstdOptions | None = None,
        mode: int | None = None,
        annotations: dict[str, str] | None = None,
        split: Split | None = None,
        renamed: dict[Digest, Digest] | None = None,
    ) -> None:
        """``renamed``: layers that ``manifest.json`` names by another blob (a daemon that
        cannot read zstd is sent the plain tar, under its diff_id)."""
        self._docker = docker
        self._renamed = renamed
        self._annotations = annotations
        self._split: SplitWriter | None = None
        self.parts: list[str] = []
        self._mode = 0o666 & ~umask() if mode is None else mode
        self._written: set[Digest] = set()
        self._temp: str | None = None
        self._target: Path | None = None
        if not isinstance(target, str):  # a stream we do not own (a pipe to a daemon)
            self.origin = "<stream>"
            self._file: BinaryIO = target
        elif target == "-":
            self.origin = "<stdout>"
            self._file = sys.stdout.buffer
        elif split is not None:
            self.origin = target
            self._split = SplitWriter(Path(target), split)
            self._file = self._split  # type: ignore[assignment]
        else:
            self.origin = target
            self._target = output_path(Path(target))  # a symlink: the file it points to
            self._temp = _temp_file_beside(self._target)
            self._file = SyncingFile(self._temp, name=target)  # closed in commit/abort
        self._frames = SeekableWriter(self._file, zstd) if zstd is not None else None
        self._filling: FillingWriter | None = None
        """A plain tar to a file: a bundle's layers are decoded into it in parallel."""
        if self._frames is None and isinstance(self._file, SyncingFile):
            self._filling = FillingWriter(self._file, self.origin)
        self._tar = TarWriter(self._frames or self._filling or self._file)
        self.stats: dict[str, int] = {}

    def begin(self, roots: list[ResolvedImage]) -> None:
        documents = LayoutDocuments(self._annotations, self._renamed)
        for root in roots:
            documents.add(root)
        self._tar.add_bytes(LAYOUT_FILE, documents.layout())
        self._tar.add_bytes(INDEX_FILE, documents.index())
        if self._docker:
            self._tar.add_bytes(MANIFEST_FILE, documents.docker_manifest())
        self._tar.add_dir("blobs")
        self._tar.add_dir("blobs/sha256")
        for descriptor, data in write_order(roots):
            if data is not None and descriptor.digest not in self._written:
                self._tar.add_bytes(blob_path(descriptor.digest), data)
                self._written.add(descriptor.digest)

    def has(self, descriptor: Descriptor) -> bool:
        return descriptor.digest in self._written

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        # in a bundle, a layer's bytes start and end frames of their own: a seek point, and
        # frames a rewrite of the bundle can copy without decompressing them; read a frame
        # at a time, each read becomes a frame as it is (no joining of smaller reads)
        path = blob_path(descriptor.digest)
        if self._frames is None:  # a bundle's frame at a time: no read joins or cuts one
            self._tar.add_stream(path, descriptor.size, stream, chunk=DEFAULT_FRAME_SIZE)
        else:
            frames = self._frames
            self._tar.add_stream(
                path, descriptor.size, stream, frames.end_frame, chunk=frames.frame_size
            )
        self._written.add(descriptor.digest)

    def accepts_frames(self, options: ZstdOptions | None) -> bool:
        """Already compressed frames are copied as they are when made the way ours are, or
        (``None``) when they come from a bundle being rewritten."""
        return self._frames is not None and (options is None or self._frames.same_frames(options))

    def put_frames(self, descriptor: Descriptor, blob: Precompressed) -> None:
        assert self._frames is not None
        frames = self._frames
        self._tar.add_written_elsewhere(  # copy_frames ends the frame holding the header
            blob_path(descriptor.digest),
            descriptor.size,
            lambda: frames.copy_frames(blob.fd, blob.frames, blob.lead),
        )
        self._written.add(descriptor.digest)

    @property
    def fills_in_place(self) -> bool:
        return self._filling is not None

    def put_in_frames(self, descriptor: Descriptor, blob: InFrames, origin: str) -> None:
        """The layer's bytes are left as a hole (its header and padding written around it)
        that workers fill, decoding its frames in parallel; verified by ``commit``."""
        filling = self._filling
        assert filling is not None
        digest, size = descriptor.digest, descriptor.size
        self._tar.add_written_elsewhere(
            blob_path(digest),
            size,
            lambda: filling.fill(digest, size, blob.frames, blob.decode, origin),
        )
        self._written.add(digest)

    def _add_member_index(self, frames: SeekableWriter) -> None:
        """A bundle of many members ends with its member index, in a frame of its own with
        the end of the tar (see ``blobs.tar_members``), larger than the others if need be;
        one larger than a reader takes (limits.MAX_ARCHIVE_INDEX) is left out."""
        if len(self._tar.entries) < tar_members.INDEX_FROM:
            return
        raw = tar_members.encode(self._tar.entries)
        tail = 3 * tarfile.BLOCKSIZE + len(raw) + tarfile.RECORDSIZE
        if tail > limits.MAX_ARCHIVE_INDEX:
            return
        frames.last_frame(tail)
        self._tar.add_bytes(tar_members.MEMBERS_FILE, raw)

    def commit(self) -> None:
        if self._frames is not None:
            self._add_member_index(self._frames)
        self._tar.close()
        if self._filling is not None:  # every layer decoded in place is there, verified
            self._filling.finish()
        if self._frames is not None:
            self._frames.close()
            self.stats = {"bytes_in": self._frames.bytes_in, "bytes_out": self._frames.bytes_out}
        self._file.flush()
        if self._split is not None:
            self.parts = self._split.commit(self._mode)
            return
        if self._temp is None or self._target is None:
            return
        assert isinstance(self._file, SyncingFile)
        self._file.sync()
        self._file.close()
        os.chmod(self._temp, self._mode)
        os.replace(self._temp, self._target)

    def abort(self) -> None:
        if self._filling is not None:
            self._filling.cancel()
        if self._frames is not None:
            self._frames.discard()
        if self._split is not None:
            self._split.discard()
        if self._temp is None:
            return
        with contextlib.suppress(OSError):  # bytes still buffered fail again (disk full)
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)


class DirLayoutSink(Sink):
    """An OCI layout directory, built in a temporary directory and renamed into place."""

    def __init__(self, target: str, annotations: dict[str, str] | None = None) -> None:
        self.origin = target
        self._target = Path(target)
        if self._target.exists() and (not self._target.is_dir() or any(self._target.iterdir())):
            raise Conflict(f"{target}: already exists and is not an empty directory")
        parent = self._target.parent
        parent.mkdir(parents=True, exist_ok=True)
        self._temp = Path(
            tempfile.mkdtemp(prefix=f".{self._target.name}.", suffix=".tmp", dir=parent)
        )
        self._documents = LayoutDocuments(annotations)
        self._written: set[Digest] = set()
        self.parts: list[str] = []
        """Never in parts (only a bundle is split)."""

    def begin(self, roots: list[ResolvedImage]) -> None:
        for root in roots:
            self._documents.add(root)

    def has(self, descriptor: Descriptor) -> bool:
        return descriptor.digest in self._written

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        _write_file(self._temp / blob_path(descriptor.digest), stream)
        self._written.add(descriptor.digest)

    def commit(self) -> None:
        (self._temp / LAYOUT_FILE).write_bytes(self._documents.layout())
        (self._temp / INDEX_FILE).write_bytes(self._documents.index())
        os.chmod(self._temp, 0o777 & ~umask())
        if self._target.exists():
            self._target.rmdir()
        os.rename(self._temp, self._target)

    def abort(self) -> None:
        shutil.rmtree(self._temp, ignore_errors=True)


def _write_file(path: Path, stream: BinaryIO) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        while chunk := stream.read(limits.COPY_CHUNK):
            out.write(chunk)


def _temp_file_beside(target: Path) -> str:
    if target.is_dir():
        raise Conflict(f"{target}: is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise InputError(f"{target}: directory {parent} does not exist")
    fd, name = temp_beside(target)
    os.close(fd)
    return name


FORMATS = ("bundle", "docker", "oci", "oci-dir")


def open_sink(
    target: str,
    fmt: str,
    zstd: ZstdOptions | None = None,
    mode: int | None = None,
    annotations: dict[str, str] | None = None,
    split: Split | None = None,
) -> TarLayoutSink | DirLayoutSink:
    """A sink for ``--to bundle|docker|oci|oci-dir``; ``mode``: the new file's permissions;
    ``annotations``: for the top-level ``index.json`` (a delta names its base there);
    ``split``: a bundle in parts."""
    if split is not None and (fmt != "bundle" or target == "-"):
        raise InputError("--split-size writes bundles to files (--to bundle, not stdout)")
    if fmt == "bundle":
        options = zstd or ZstdOptions()
        return TarLayoutSink(target, True, options, mode, annotations, split)
    if target == "-" and fmt == "oci-dir":
        raise InputError("an OCI layout directory cannot be written to standard output")
    if fmt == "docker":
        return TarLayoutSink(target, docker=True, mode=mode, annotations=annotations)
    if fmt == "oci":
        return TarLayoutSink(target, docker=False, mode=mode, annotations=annotations)
    if fmt == "oci-dir":
        return DirLayoutSink(target, annotations)
    raise InputError(f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}")
