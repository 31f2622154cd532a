"""The image lists ``archiver sync`` reads, recognised by their content: Hauler manifests,
skopeo sync files, mindthegap image files (both forms), regsync configurations and
archiver's own list. ``read_list`` takes the text (the caller reads the file) and returns
a ``SyncList``; anything not understood is one ``InputError`` line naming the file and the
field (with line and column when the YAML does not parse)."""

from __future__ import annotations

from archiver.errors import InputError
from archiver.model.sync_lists import hauler, own, plain, registry_keyed, regsync, tags
from archiver.model.sync_lists.spec import ImageSpec, RegistrySettings, SyncList, TagFilter
from archiver.model.sync_lists.yaml_text import load_documents

__all__ = ["ImageSpec", "RegistrySettings", "SyncList", "TagFilter", "read_list"]

KNOWN = (
    "a Hauler manifest, a skopeo sync file, a mindthegap images file, a regsync config or "
    "an archiver sync list"
)


def read_list(text: str, origin: str) -> SyncList:
    found = _read(text, origin)
    for spec in found.images:
        tags.check(spec)
    return found


def _read(text: str, origin: str) -> SyncList:
    if plain.looks_like(text):
        return plain.read(text, origin)
    documents = load_documents(text, origin)
    if not documents:
        raise InputError(f"{origin}: empty: no image listed")
    if any(hauler.looks_like(d) for d in documents):
        return hauler.read(documents, origin)
    if len(documents) > 1:
        raise InputError(f"{origin}: {len(documents)} YAML documents, and not Hauler manifests")
    document = documents[0]
    if own.looks_like(document):
        return own.read(document, origin)
    if regsync.looks_like(document):
        return regsync.read(document, origin)
    if registry_keyed.looks_like(document):
        return registry_keyed.read(document, origin)
    raise InputError(f"{origin}: not a list archiver sync reads (want {KNOWN})")
