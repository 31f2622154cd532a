"""containerd's image records (a full name and the descriptor of its manifest or index),
and the labels that make its garbage collector keep what an image reaches.

containerd keeps an image's blobs because of labels on its documents: an index names its
manifests (``containerd.io/gc.ref.content.m.<i>``), a manifest its config
(``...content.config``) and layers (``...content.l.<i>``), as containerd's own import
labels them; the config names its unpacked snapshot (see ``unpack.snapshot_label``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from archiver.errors import Conflict
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Index, Manifest
from archiver.model.image import ResolvedImage
from archiver.places.containerd.client import ContainerdClient
from archiver.places.containerd.messages import message

_SERVICE = "images.v1.Images"
_GC = "containerd.io/gc.ref.content."


def child_labels(children: list[Descriptor]) -> dict[str, str]:
    """The labels by which a document's children are kept: config, manifests (m.<i>),
    layers (l.<i>), anything else (<i>), numbered per kind in the document's order."""
    counts: Counter[str] = Counter()
    labels: dict[str, str] = {}
    for child in children:
        if media.is_image_config(child.media_type):
            labels[f"{_GC}config"] = str(child.digest)
            continue
        if media.is_manifest(child.media_type):
            kind = "m."
        elif media.is_layer(child.media_type):
            kind = "l."
        else:
            kind = ""
        labels[f"{_GC}{kind}{counts[kind]}"] = str(child.digest)
        counts[kind] += 1
    return labels


def document_labels(images: list[ResolvedImage]) -> dict[Digest, dict[str, str]]:
    """Every document of ``images`` (indexes and manifests) with its children's labels."""
    labels: dict[Digest, dict[str, str]] = {}
    for image in images:
        documents: list[Manifest | Index] = [node.manifest for node in image.images]
        documents += image.indexes
        for document in documents:
            if isinstance(document, Manifest):
                children = [document.config, *document.layers]
            else:
                children = list(document.manifests)
            labels[document.descriptor().digest] = child_labels(children)
    return labels


class ImageStore:
    def __init__(self, client: ContainerdClient) -> None:
        self._client = client
        self._create = client.method(_SERVICE, "Create", "ImageResponse")
        self._update = client.method(_SERVICE, "Update", "ImageResponse")
        self._list = client.method(_SERVICE, "List", "ListImagesResponse")

    def put(self, name: str, target: Descriptor) -> None:
        """Name ``target`` ``name``: a new record, or the record of that name moved."""
        image = message("Image")(
            name=name,
            target=message("Descriptor")(
                media_type=target.media_type, digest=str(target.digest), size=target.size
            ),
        )
        try:
            self._create(message("ImageRequest")(image=image), f"create image {name}")
        except Conflict:
            mask = message("FieldMask")(paths=["target"])
            self._update(
                message("ImageRequest")(image=image, update_mask=mask), f"update image {name}"
            )

    def list(self, names: list[str] | None = None) -> list[Any]:
        """The image records (of ``names`` only, when given)."""
        filters = [f'name=="{name}"' for name in names or []]
        reply = self._list(message("ListImagesRequest")(filters=filters), "list images")
        return list(reply.images)
