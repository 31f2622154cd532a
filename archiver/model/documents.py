"""Parsed JSON documents that keep their exact bytes: identity is the digest of the bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from archiver import schema
from archiver.errors import InputError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.json_decode import Memo, load_json
from archiver.model.platform import Platform


def dump_json(data: Any) -> bytes:
    """Deterministic compact JSON bytes for documents we write ourselves."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def sniff_media_type(data: Any) -> str:
    """The media type a document declares, or the one its shape implies."""
    declared = data.get("mediaType") if isinstance(data, dict) else None
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(data, dict):
        if "manifests" in data:
            return media.OCI_INDEX
        if "config" in data and "layers" in data:
            return media.OCI_MANIFEST
    return ""


@dataclass(frozen=True)
class Document:
    raw: bytes
    media_type: str

    @cached_property
    def digest(self) -> Digest:
        return Digest.from_bytes(self.raw)

    def descriptor(self, **extra: Any) -> Descriptor:
        if not extra:
            return self._descriptor
        return Descriptor(self.media_type, self.digest, len(self.raw), **extra)

    @cached_property
    def _descriptor(self) -> Descriptor:
        """The plain descriptor, made once: every list of an image's blobs asks for it."""
        return Descriptor(self.media_type, self.digest, len(self.raw))


@dataclass(frozen=True)
class Manifest(Document):
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None


@dataclass(frozen=True)
class Index(Document):
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)


_parsed: Memo[Any] = Memo(32 * 1024 * 1024)
"""Documents parsed in this process, by (media type, bytes): each once per command."""


def parse_document(raw: bytes, origin: str, media_type: str = "") -> Manifest | Index:
    """Parse a manifest or an index; validate it against its schema first.

    ``media_type`` is what the referring descriptor said; the document's own
    ``mediaType`` field wins when present. The same bytes are parsed once (the value is
    shared: documents are not changed).
    """
    known = _parsed.get(media_type, raw)
    if isinstance(known, Manifest | Index):
        return known
    document = _parse_document(raw, origin, media_type)
    _parsed.put(media_type, raw, document)
    return document


def _parse_document(raw: bytes, origin: str, media_type: str) -> Manifest | Index:
    data = load_json(raw, origin)
    kind = sniff_media_type(data) or media_type
    if media.is_index(kind):
        schema.validate_once(
            "docker-manifest-list" if media.is_docker(kind) else "oci-index", raw, data, origin
        )
        items = tuple(
            Descriptor.from_json(d, f"{origin}: manifests[{i}]")
            for i, d in enumerate(data.get("manifests") or [])
        )
        return Index(raw, kind, items, dict(data.get("annotations") or {}))
    if media.is_manifest(kind):
        schema.validate_once(
            "docker-manifest" if media.is_docker(kind) else "oci-manifest", raw, data, origin
        )
        subject = data.get("subject")
        return Manifest(
            raw,
            kind,
            Descriptor.from_json(data["config"], f"{origin}: config"),
            tuple(
                Descriptor.from_json(d, f"{origin}: layers[{i}]")
                for i, d in enumerate(data.get("layers") or [])
            ),
            dict(data.get("annotations") or {}),
            Descriptor.from_json(subject, f"{origin}: subject") if subject else None,
            data.get("artifactType"),
        )
    if kind in (media.DOCKER_MANIFEST_V1, media.DOCKER_MANIFEST_V1_SIGNED) or (
        isinstance(data, dict) and data.get("schemaVersion") == 1
    ):
        raise InputError(f"{origin}: Docker schema 1 manifests are not supported")
    raise InputError(f"{origin}: unsupported document media type {kind or 'unknown'!r}")


@dataclass(frozen=True)
class HistoryEntry:
    created: str | None
    created_by: str
    comment: str
    empty_layer: bool
    author: str


@dataclass(frozen=True)
class ImageConfig(Document):
    """An image config: what every image listed needs of it (when, which platform, its
    layers' diff_ids) is kept; the rest is decoded from its bytes when asked for (``data``:
    inspect, history, labels), so a bundle of thousands of images does not hold every
    config twice, as bytes and as a dict."""

    created: str | None
    platform: Platform
    diff_ids: tuple[Digest, ...]

    @classmethod
    def parse(cls, raw: bytes, origin: str, media_type: str = media.OCI_CONFIG) -> ImageConfig:
        known = _parsed.get("config " + media_type, raw)
        if isinstance(known, ImageConfig):
            return known
        data = schema.load("image-config", raw, origin)
        rootfs = data.get("rootfs") or {}
        try:
            diff_ids = tuple(Digest.parse(d) for d in rootfs.get("diff_ids") or [])
        except InputError as exc:
            raise InputError(f"{origin}: rootfs.diff_ids: {exc}") from None
        platform = Platform(
            str(data.get("os", "")),
            str(data.get("architecture", "")),
            data.get("variant"),
            data.get("os.version"),
        )
        config = cls(raw, media_type, data.get("created"), platform, diff_ids)
        _parsed.put("config " + media_type, raw, config)
        return config

    @property
    def data(self) -> dict[str, Any]:
        """The whole document, decoded anew from its bytes (valid: checked when parsed)."""
        data = load_json(self.raw, "image config")
        assert isinstance(data, dict)
        return data

    @property
    def id(self) -> Digest:
        """The image ID docker shows: the digest of the config bytes."""
        return self.digest

    @property
    def os(self) -> str:
        return self.platform.os

    @property
    def architecture(self) -> str:
        return self.platform.architecture

    @property
    def variant(self) -> str | None:
        return self.platform.variant

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.data.get("config") or {})

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        return tuple(
            HistoryEntry(
                created=h.get("created"),
                created_by=h.get("created_by", ""),
                comment=h.get("comment", ""),
                empty_layer=bool(h.get("empty_layer", False)),
                author=h.get("author", ""),
            )
            for h in self.data.get("history") or []
        )
