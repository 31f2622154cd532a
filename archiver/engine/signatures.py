"""Offline checks of cosign key-based signatures carried in an archive.

A cosign signature is a manifest tagged ``sha256-<hex>.sig`` whose layers are simple-signing
payloads (``application/vnd.dev.cosign.simplesigning.v1+json``): JSON naming the signed
manifest in ``critical.image.docker-manifest-digest``, signed by the key whose signature
(base64) sits in the layer's ``dev.cosignproject.cosign/signature`` annotation. An image is
``signed`` when one payload names its digest and one of the keys verifies that payload;
anything unexpected counts against it (fails closed). Keys: PEM public keys, ECDSA P-256
(SHA-256, as cosign), RSA (PKCS#1 v1.5 with SHA-256) and Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from archiver.blobs import limits
from archiver.blobs.regular_file import open_regular
from archiver.engine import extras as extras_in
from archiver.engine.graph import resolve
from archiver.errors import ArchiverError, InputError
from archiver.model import extras
from archiver.model.digest import Digest
from archiver.model.documents import Manifest
from archiver.model.image import ImageEntry
from archiver.model.json_decode import load_json
from archiver.places.base import Source, read_document

SIGNED, UNSIGNED, BAD = "signed", "no signature", "bad signature"
MAX_SIGNATURES = 100
"""Signature layers checked per image (the rest is not read)."""

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class Key:
    name: str
    key: PublicKey


def load_key(path: str) -> Key:
    """A PEM public key file; a malformed one or an algorithm cosign does not use is one
    line naming the file."""
    try:
        with os.fdopen(open_regular(path), "rb") as stream:
            pem = limits.read_capped(stream, limits.MAX_SMALL_FILE, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{path}: not a PEM public key ({_first_line(exc)})") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise InputError(f"{path}: ECDSA on {key.curve.name}: only P-256 is supported")
        return Key(path, key)
    if isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return Key(path, key)
    kind = type(key).__name__
    raise InputError(f"{path}: unknown key algorithm {kind}: use ECDSA P-256, RSA or Ed25519")


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def verifies(key: PublicKey, payload: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``payload`` is ``key``'s, as cosign signs."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Check:
    """What one signature says of one image: ``signed`` (by ``key``) or why not."""

    state: str
    key: str | None = None
    reason: str = ""


def check_payload(
    payload: bytes, signature_b64: str | None, subject: Digest, keys: list[Key]
) -> Check:
    """One simple-signing payload and its base64 signature against the image ``subject``."""
    if not signature_b64:
        return Check(BAD, reason="the layer carries no signature annotation")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return Check(BAD, reason="the signature is not base64")
    try:
        named = _manifest_digest(load_json(payload, "payload"))
    except ArchiverError as exc:
        return Check(BAD, reason=f"the payload is not simple-signing JSON ({exc})")
    if named != str(subject):
        return Check(BAD, reason=f"the payload names another manifest, {named[:80]}")
    for key in keys:
        if verifies(key.key, payload, signature):
            return Check(SIGNED, key.name)
    return Check(BAD, reason="no key given verifies it")


def _manifest_digest(document: Any) -> str:
    try:
        named = document["critical"]["image"]["docker-manifest-digest"]
    except (KeyError, TypeError):
        return "nothing"
    return named if isinstance(named, str) else "nothing"


@dataclass(frozen=True)
class ImageCheck:
    image: str
    digest: Digest
    state: str
    key: str | None = None
    reason: str = ""

    def line(self) -> str:
        if self.state == SIGNED:
            return f"{self.image}: signed by {self.key}"
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.image}: {self.state}{why}"


def check_image(
    source: Source, entry: ImageEntry, parted: extras_in.Parted, keys: list[Key]
) -> ImageCheck:
    """The cosign signatures of ``entry``'s digest in ``source`` against ``keys``."""
    subject = entry.descriptor.digest
    found = [e for e, extra in parted.naming(subject) if extra.kind == "sig"]
    checks: list[Check] = []
    for signature_entry in found:
        checks += _check_signature(source, signature_entry, subject, keys)
    good = [c for c in checks if c.state == SIGNED]
    if good:
        return ImageCheck(entry.label, subject, SIGNED, good[0].key)
    if not checks:
        return ImageCheck(entry.label, subject, UNSIGNED)
    return ImageCheck(entry.label, subject, BAD, reason=checks[0].reason)


def _check_signature(
    source: Source, entry: ImageEntry, subject: Digest, keys: list[Key]
) -> list[Check]:
    try:
        document = resolve(source, entry).document
        if not isinstance(document, Manifest):
            return [Check(BAD, reason=f"{entry.descriptor.digest} is not a manifest")]
        out = []
        for layer in document.layers[:MAX_SIGNATURES]:
            if layer.media_type != extras.COSIGN_SIMPLESIGNING:
                continue
            payload = read_document(source, layer)
            signature = layer.annotations.get(extras.COSIGN_SIGNATURE_ANNOTATION)
            out.append(check_payload(payload, signature, subject, keys))
        return out
    except ArchiverError as exc:
        return [Check(BAD, reason=str(exc))]
