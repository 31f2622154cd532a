"""An OCI layout directory holding an image and extras beside it, written by hand (as
another tool would): a cosign signature tagged ``sha256-<hex>.sig``, an SBOM referrer."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests import cosign_format as cf
from tests.factory import layer


def write_blob(root: Path, data: bytes) -> None:
    path = root / "blobs" / "sha256" / cf.digest(data)[7:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def image(content: bytes) -> cf.Artifact:
    return image_of(layer({"app.txt": content}), created="2025-01-01T00:00:00Z")


def image_of(
    tar: bytes, architecture: str = "amd64", created: str | None = None, gzipped: bool = False
) -> cf.Artifact:
    """An OCI image of the one layer ``tar`` (gzipped, as registries hold layers, when
    ``gzipped``: a push then has nothing to compress and the digests stay)."""
    blob = gzip.compress(tar, mtime=0) if gzipped else tar
    document: dict[str, object] = {
        "architecture": architecture,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [cf.digest(tar)]},
    }
    if created is not None:
        document["created"] = created
    config = cf.dumps(document)
    kind = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzipped else "")
    manifest = cf.dumps(
        {
            "schemaVersion": 2,
            "mediaType": cf.OCI_MANIFEST,
            "config": cf.descriptor(cf.OCI_CONFIG, config),
            "layers": [cf.descriptor(kind, blob)],
        }
    )
    return cf.Artifact(manifest, [config, blob])


def layout(root: Path, entries: list[tuple[cf.Artifact, str | None]]) -> Path:
    """``entries``: each artifact and its full name (``repo:tag``) or None."""
    items = []
    for artifact, name in entries:
        for blob in [*artifact.blobs, artifact.manifest]:
            write_blob(root, blob)
        annotations = {}
        if name is not None:
            annotations = {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": name.rpartition(":")[2],
            }
        item = cf.descriptor(cf.OCI_MANIFEST, artifact.manifest)
        if annotations:
            item["annotations"] = annotations
        items.append(item)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    (root / "index.json").write_text(json.dumps({**index, "manifests": items}))
    return root


def signed_layout(
    root: Path, key: cf.PrivateKey, other: bool = False
) -> tuple[Path, cf.Artifact, cf.Artifact]:
    """app:1 signed with ``key`` (``other``: plus an unsigned tool:1), and an SBOM of app."""
    app = image(b"app\n")
    signature = cf.signature(key, "example.com/app", app.digest)
    subject = cf.descriptor(cf.OCI_MANIFEST, app.manifest)
    sbom = cf.referrer(subject, "application/spdx+json", b"{}", {})
    entries: list[tuple[cf.Artifact, str | None]] = [
        (app, "example.com/app:1"),
        (signature, f"example.com/app:sha256-{app.digest[7:]}.sig"),
        (sbom, None),
    ]
    if other:
        entries.append((image(b"tool\n"), "example.com/tool:1"))
    return layout(root, entries), app, signature
