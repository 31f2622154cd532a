"""Inventories: what a place already holds, small enough to carry back across an air gap.

An inventory lists blob digests, uncompressed layer digests (diff_ids) and, for a daemon,
layer chains, plus the images with their references, IDs and manifest digests. It is made
without reading a layer: a daemon's from its image list and ``RootFS.Layers``, a registry's
and an archive's from their documents (manifests and configs). On disk it is JSON (schemas/
inventory.schema.json) carrying a checksum of its own content: a file that was edited,
truncated or is of another format or version is refused when read.

A delta is written against an inventory (or an earlier bundle, inventoried on the fly):
``Inventory.holdings`` is what the base holds, in the terms ``model.holdings`` decides by.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from archiver import schema
from archiver.blobs import limits
from archiver.blobs.regular_file import open_regular
from archiver.engine import catalog
from archiver.engine.graph import resolve
from archiver.engine.opening import open_place
from archiver.errors import InputError, IntegrityError, NotFound
from archiver.model.digest import chain_ids
from archiver.model.holdings import Holdings
from archiver.model.json_decode import load_json
from archiver.model.reference import Reference
from archiver.places.base import Source
from archiver.places.transports import DAEMON, REGISTRY, Place

if TYPE_CHECKING:
    from archiver.places.daemon.client import DaemonClient
    from archiver.places.registry.client import RegistryClient
    from archiver.places.registry.registries import Registries

FORMAT = "archiver-inventory"
VERSION = 1


@dataclass(frozen=True)
class Inventory:
    kind: str  # "daemon", "registry" or "archive"
    origin: str
    blobs: frozenset[str]
    diff_ids: frozenset[str]
    chains: frozenset[str]
    images: tuple[dict[str, Any], ...]
    created: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "kind": self.kind,
            "origin": self.origin,
            "created": self.created,
            "images": list(self.images),
            "blobs": sorted(self.blobs),
            "diffIds": sorted(self.diff_ids),
            "chains": sorted(self.chains),
        }

    @property
    def checksum(self) -> str:
        """The digest of the canonical content: what a delta records as its base."""
        canonical = json.dumps(self.body(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps({**self.body(), "checksum": self.checksum}, indent=1) + "\n"

    @property
    def holdings(self) -> Holdings:
        """What the base holds: blobs, and layers by chain (a daemon finds a layer by its
        chain) or else by diff_id (a registry's or an archive's layer compressed otherwise)."""
        if self.kind == "daemon":
            return Holdings(blobs=self.blobs, chains=self.chains)
        return Holdings(blobs=self.blobs, diff_ids=self.diff_ids)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def of_source(source: Source, kind: str = "archive") -> Inventory:
    """Every blob, diff_id and image of ``source`` (documents read, layers not)."""
    blobs: set[str] = set()
    diff_ids: set[str] = set()
    images = []
    for entry in source.images():
        root = resolve(source, entry)
        for descriptor, data in root.blobs():
            if data is not None or source.has_blob(descriptor.digest):
                blobs.add(str(descriptor.digest))
        for node in root.images:
            if node.config is not None:
                diff_ids.update(str(d) for d in node.config.diff_ids)
    for record in catalog.records(source):
        names: list[str | None] = [r.familiar() for r in record.entry.refs]
        for name in names or [None]:
            images.append(
                {
                    "reference": name,
                    "id": str(record.id),
                    "digest": str(record.digest) if record.digest else None,
                }
            )
    return Inventory(
        kind,
        source.origin,
        frozenset(blobs),
        frozenset(diff_ids),
        frozenset(),
        tuple(images),
        now(),
    )


def read(path: str) -> Inventory:
    """An inventory file, checked: format, version, schema, checksum."""
    limit = limits.MAX_ARCHIVE_INDEX * 8
    try:
        with open(path, "rb") as file:
            if os.fstat(file.fileno()).st_size > limit:
                raise InputError(f"{path}: too large for an inventory (over {limit} bytes)")
            raw = limits.read_capped(file, limit, f"{path}: inventory")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    data = load_json(raw, f"{path}: not an inventory")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not an archiver inventory")
    if data.get("version") != VERSION:
        raise InputError(
            f"{path}: inventory version {data.get('version')!r}; this archiver reads {VERSION}"
        )
    schema.validate("inventory", data, path)
    for key in ("blobs", "diffIds", "chains"):  # uniqueItems in the schema is quadratic
        if len(set(data[key])) != len(data[key]):
            raise InputError(f"{path}: $.{key}: has duplicate items")
    inventory = Inventory(
        data["kind"],
        data["origin"],
        frozenset(data["blobs"]),
        frozenset(data["diffIds"]),
        frozenset(data["chains"]),
        tuple(data["images"]),
        data.get("created", ""),
    )
    if inventory.checksum != data["checksum"]:
        raise IntegrityError(
            path,
            data["checksum"],
            f"the inventory was changed: its content hashes to {inventory.checksum}",
        )
    return inventory


def is_inventory_file(path: str) -> bool:
    """A JSON file (rather than an archive) by its first byte."""
    try:
        with os.fdopen(open_regular(path), "rb") as file:  # a FIFO is refused, not awaited
            return file.read(64).lstrip()[:1] == b"{"
    except OSError:
        return False


def of_daemon(client: DaemonClient, names: list[str] | None = None) -> Inventory:
    """Images, IDs, repo digests, diff_ids and layer chains of a daemon (no layer read):
    of every image it holds, or of ``names`` (references or IDs) alone."""
    diff_ids: set[str] = set()
    chains: set[str] = set()
    blobs: set[str] = set()
    images = []
    if names is None:
        held = [client.inspect(image["Id"]) for image in client.images(all_images=True)]
    else:  # one image named twice (by two tags, say) is one image
        held = list({d["Id"]: d for d in (client.inspect(name) for name in names)}.values())
    for details in held:
        layers = (details.get("RootFS") or {}).get("Layers") or []
        diff_ids.update(layers)
        chains.update(chain_ids(layers))
        blobs.add(details["Id"])  # the config: the image ID is its digest
        digests = [d.partition("@")[2] for d in details.get("RepoDigests") or []]
        tags = [t for t in details.get("RepoTags") or [] if t != "<none>:<none>"]
        for tag in tags or [None]:
            images.append(
                {"reference": tag, "id": details["Id"], "digest": digests[0] if digests else None}
            )
    return Inventory(
        "daemon",
        f"docker-daemon ({client.host})",
        frozenset(blobs),
        frozenset(diff_ids),
        frozenset(chains),
        tuple(images),
        now(),
    )


def of_registry(
    client: RegistryClient, repositories: list[str], tag: str | None = None
) -> Inventory:
    """Every manifest and blob digest of ``repositories`` (all tags, or ``tag``), from
    their documents (manifests and configs, verified as any source's are; no layer)."""
    refs = [
        Reference(client.registry, repository, name)
        for repository in repositories
        for name in ([tag] if tag else client.tags(repository))
    ]
    from archiver.places.registry.place import RegistrySource  # httpx: only for registries

    return of_source(RegistrySource(client, refs), kind="registry")


def of_place(place: Place, registries: Registries | None = None) -> Inventory:
    """The inventory of a daemon (of every image, or of ``place.names`` alone), a registry
    (a host alone: every repository; ``HOST/REPO`` names: those; ``HOST/REPO:TAG``: one
    image), or an archive, bundle or OCI dir."""
    if place.format == DAEMON:
        from archiver.places.daemon.client import DaemonClient  # http.client: daemon only

        return of_daemon(DaemonClient(), list(place.names) or None)
    if place.format == REGISTRY:
        from archiver.places.registry.registries import given_or_own

        with given_or_own(registries) as clients:
            return _of_registry_place(place, clients)
    with open_place(place) as source:
        return of_source(source)


def _of_registry_place(place: Place, registries: Registries) -> Inventory:
    host, _, rest = ",".join(place.names).partition("/")
    if not rest:
        client = registries.client(host)
        return of_registry(client, client.catalog())
    refs = [Reference.parse(name, default_tag=False) for name in place.names]
    if len({ref.registry for ref in refs}) != 1 or len({ref.tag for ref in refs}) != 1:
        raise InputError(f"{place}: name repositories of one registry (REPO,REPO or REPO:TAG)")
    client = registries.client(refs[0].registry)
    return of_registry(client, [ref.repository for ref in refs], refs[0].tag)
