"""Writers of the OCI layout: as a directory, as a tar, and as the hybrid docker-save tar.

The hybrid is an OCI layout with a docker ``manifest.json`` beside it: ``docker load``
(20.10 and later) reads the latter; skopeo, containerd and Docker ≥ 25 read the former.
Blobs are written once each; nothing is visible at the target name until ``commit``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from archiver.blobs import limits
from archiver.blobs.tarwriter import TarWriter
from archiver.engine.graph import Root
from archiver.errors import Conflict, InputError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import dump_json
from archiver.model.platform import Platform
from archiver.model.reference import Reference
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

    def __init__(self) -> None:
        self._index: list[dict[str, Any]] = []
        self._docker: dict[Digest, dict[str, Any]] = {}

    def add(self, root: Root) -> None:
        descriptor = root.descriptor
        names: list[tuple[Reference | None, str | None]] = [(r, None) for r in root.entry.refs]
        names += [(None, t) for t in root.entry.tags]
        for ref, tag in names or [(None, None)]:
            self._index.append(descriptor.with_annotations(index_annotations(ref, tag)).to_json())
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

    @staticmethod
    def _docker_item(
        config: Descriptor, layers: tuple[Descriptor, ...], diff_ids: tuple[Digest, ...]
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "Config": blob_path(config.digest),
            "RepoTags": [],
            "Layers": [blob_path(layer.digest) for layer in layers],
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
        return dump_json(
            {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": self._index}
        )

    def docker_manifest(self) -> bytes:
        items = []
        for item in self._docker.values():
            out = dict(item)
            out["RepoTags"] = item["RepoTags"] or None
            items.append(out)
        return dump_json(items)


class TarLayoutSink:
    """An OCI layout in a tar (``oci-archive``), plus ``manifest.json`` when ``docker=True``."""

    def __init__(self, target: str, docker: bool = True) -> None:
        self.origin = target
        self._target = Path(target)
        self._docker = docker
        self._documents = LayoutDocuments()
        self._written: set[Digest] = set()
        self._dirs: set[str] = set()
        self._temp = _temp_file_beside(self._target)
        self._file: BinaryIO = open(self._temp, "wb")  # noqa: SIM115 - closed in commit/abort
        self._tar = TarWriter(self._file)

    def has(self, descriptor: Descriptor) -> bool:
        return descriptor.digest in self._written

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        path = blob_path(descriptor.digest)
        self._ensure_dirs(path)
        self._tar.add_stream(path, descriptor.size, stream)
        self._written.add(descriptor.digest)

    def _ensure_dirs(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            directory = "/".join(parts[:i])
            if directory not in self._dirs:
                self._dirs.add(directory)
                self._tar.add_dir(directory)

    def put_root(self, root: Root) -> None:
        self._documents.add(root)

    def commit(self) -> None:
        self._tar.add_bytes(LAYOUT_FILE, self._documents.layout())
        self._tar.add_bytes(INDEX_FILE, self._documents.index())
        if self._docker:
            self._tar.add_bytes(MANIFEST_FILE, self._documents.docker_manifest())
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.chmod(self._temp, 0o666 & ~_umask())
        os.replace(self._temp, self._target)

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)


class DirLayoutSink:
    """An OCI layout directory, built in a temporary directory and renamed into place."""

    def __init__(self, target: str) -> None:
        self.origin = target
        self._target = Path(target)
        if self._target.exists() and (not self._target.is_dir() or any(self._target.iterdir())):
            raise Conflict(f"{target}: already exists and is not an empty directory")
        parent = self._target.parent
        parent.mkdir(parents=True, exist_ok=True)
        self._temp = Path(
            tempfile.mkdtemp(prefix=f".{self._target.name}.", suffix=".tmp", dir=parent)
        )
        self._documents = LayoutDocuments()
        self._written: set[Digest] = set()

    def has(self, descriptor: Descriptor) -> bool:
        return descriptor.digest in self._written

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        path = self._temp / blob_path(descriptor.digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            while chunk := stream.read(limits.COPY_CHUNK):
                out.write(chunk)
        self._written.add(descriptor.digest)

    def put_root(self, root: Root) -> None:
        self._documents.add(root)

    def commit(self) -> None:
        (self._temp / LAYOUT_FILE).write_bytes(self._documents.layout())
        (self._temp / INDEX_FILE).write_bytes(self._documents.index())
        os.chmod(self._temp, 0o777 & ~_umask())
        if self._target.exists():
            self._target.rmdir()
        os.rename(self._temp, self._target)

    def abort(self) -> None:
        shutil.rmtree(self._temp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_file_beside(target: Path) -> str:
    if target.is_dir():
        raise Conflict(f"{target}: is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise InputError(f"{target}: directory {parent} does not exist")
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    return name


FORMATS = ("docker", "oci", "oci-dir")


def open_sink(target: str, fmt: str) -> TarLayoutSink | DirLayoutSink:
    """A sink for ``--to docker|oci|oci-dir``."""
    if fmt == "docker":
        return TarLayoutSink(target, docker=True)
    if fmt == "oci":
        return TarLayoutSink(target, docker=False)
    if fmt == "oci-dir":
        return DirLayoutSink(target)
    raise InputError(f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}")
