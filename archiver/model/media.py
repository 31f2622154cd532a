"""Media types of OCI and Docker v2 documents and layers, and predicates over them."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_FOREIGN_TAR = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_FOREIGN_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_FOREIGN_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_LAYER_FOREIGN_TAR = "application/vnd.docker.image.rootfs.foreign.diff.tar"

MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})
FOREIGN_LAYERS = frozenset(
    {
        OCI_LAYER_FOREIGN_TAR,
        OCI_LAYER_FOREIGN_GZIP,
        OCI_LAYER_FOREIGN_ZSTD,
        DOCKER_LAYER_FOREIGN_GZIP,
        DOCKER_LAYER_FOREIGN_TAR,
    }
)
_LAYER_COMPRESSION = {
    OCI_LAYER_TAR: None,
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_FOREIGN_TAR: None,
    OCI_LAYER_FOREIGN_GZIP: "gzip",
    OCI_LAYER_FOREIGN_ZSTD: "zstd",
    DOCKER_LAYER_TAR: None,
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_LAYER_ZSTD: "zstd",
    DOCKER_LAYER_FOREIGN_GZIP: "gzip",
    DOCKER_LAYER_FOREIGN_TAR: None,
}
LAYERS = frozenset(_LAYER_COMPRESSION)


def is_manifest(media_type: str) -> bool:
    return media_type in MANIFESTS


def is_index(media_type: str) -> bool:
    return media_type in INDEXES


def is_image_config(media_type: str) -> bool:
    return media_type in IMAGE_CONFIGS


def is_layer(media_type: str) -> bool:
    return media_type in LAYERS


def is_foreign(media_type: str) -> bool:
    """Non-distributable layers: carried as descriptors (with URLs), never invented."""
    return media_type in FOREIGN_LAYERS


def layer_compression(media_type: str) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``None`` (plain tar) for a known layer type."""
    return _LAYER_COMPRESSION.get(media_type)


def is_docker(media_type: str) -> bool:
    return media_type.startswith("application/vnd.docker.")
