"""Documents in cosign's and oras's formats, made by the tests: a simple-signing payload
signed with a key, the ``sha256-<hex>.sig`` manifest holding it, an in-toto attestation,
an SBOM as an OCI 1.1 artifact with ``subject``, a Helm chart. Deterministic JSON bytes."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIGNATURE = "dev.cosignproject.cosign/signature"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}


@dataclass
class Artifact:
    """A manifest and the blobs it names (config first)."""

    manifest: bytes
    blobs: list[bytes]

    @property
    def digest(self) -> str:
        return digest(self.manifest)


def new_key(kind: str) -> PrivateKey:
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key: PrivateKey, payload: bytes) -> bytes:
    """As cosign signs: ECDSA and RSA (PKCS#1 v1.5) over SHA-256, Ed25519 over the bytes."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(payload, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(payload)


def payload(reference: str, manifest_digest: str) -> bytes:
    return dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": manifest_digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


def _config(layers: list[bytes]) -> bytes:
    return dumps(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [digest(b) for b in layers]},
        }
    )


def signature(
    key: PrivateKey | None, reference: str, manifest_digest: str, signature_b64: str = ""
) -> Artifact:
    """cosign's ``.sig`` manifest: one simple-signing layer, signed in its annotation."""
    body = payload(reference, manifest_digest)
    signed = base64.b64encode(sign(key, body)).decode() if key is not None else signature_b64
    config = _config([body])
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(SIMPLESIGNING, body, annotations={SIGNATURE: signed})],
        }
    )
    return Artifact(manifest, [config, body])


def attestation(manifest_digest: str) -> Artifact:
    """cosign's ``.att`` manifest: a DSSE envelope of an in-toto statement."""
    statement = dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "app", "digest": {"sha256": manifest_digest[7:]}}],
            "predicate": {"builder": {"id": "tests"}},
        }
    )
    envelope = dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(statement).decode(),
            "signatures": [],
        }
    )
    config = _config([envelope])
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [
                descriptor(
                    "application/vnd.dsse.envelope.v1+json",
                    envelope,
                    annotations={"predicateType": "https://slsa.dev/provenance/v0.2"},
                )
            ],
        }
    )
    return Artifact(manifest, [config, envelope])


def referrer(
    subject: dict[str, Any], artifact_type: str, content: bytes, annotations: dict[str, str]
) -> Artifact:
    """An OCI 1.1 artifact about ``subject`` (an SBOM, say), as oras attaches one."""
    empty = b"{}"
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": descriptor(OCI_EMPTY, empty),
            "layers": [descriptor(artifact_type, content)],
            "subject": subject,
            "annotations": annotations,
        }
    )
    return Artifact(manifest, [empty, content])


def helm_chart(name: str) -> Artifact:
    config = dumps({"apiVersion": "v2", "name": name, "version": "0.1.0"})
    chart = hashlib.sha256(name.encode()).digest() * 8  # stands for a .tgz
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.cncf.helm.config.v1+json", config),
            "layers": [descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", chart)],
        }
    )
    return Artifact(manifest, [config, chart])


def oras_file(name: str, content: bytes) -> Artifact:
    """A file pushed as oras does: an artifactType, the empty config, the file a layer."""
    empty = b"{}"
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.notes",
            "config": descriptor(OCI_EMPTY, empty),
            "layers": [
                descriptor(
                    "text/plain",
                    content,
                    annotations={"org.opencontainers.image.title": name},
                )
            ],
        }
    )
    return Artifact(manifest, [empty, content])
