"""Validation of every JSON document we read or write against the schemas in ``schemas/``.

Schemas are ours (written from the OCI image-spec and the Docker image spec), JSON Schema
2020-12, one file per kind plus ``defs.json`` for what they share. They are loaded lazily,
once, into one ``referencing`` registry keyed by ``$id``, so cross-file ``$ref``s resolve
locally: never over the network. jsonschema itself is imported at the first validation
(a noticeable part of start-up): a ``save`` asks the daemon for its images before it pays for it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.errors import InputError
from archiver.model.json_decode import load_json

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

KINDS = (
    "oci-manifest",
    "oci-index",
    "image-config",
    "descriptor",
    "oci-layout",
    "docker-manifest",
    "docker-manifest-list",
    "docker-save-manifest",
    "docker-save-repositories",
    "inventory",
    "sync-list",
)
_SUFFIX = ".schema.json"
_MESSAGE_LIMIT = 200
_PATH_LIMIT = 120
_ORIGIN_LIMIT = 1000


def schema_dir() -> Traversable:
    """``archiver/schemas`` in an installed wheel, else ``schemas/`` of the checkout."""
    packaged = resources.files("archiver") / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas"


def _load(name: str) -> dict[str, Any]:
    document = load_json((schema_dir() / name).read_bytes(), f"schema {name}")
    assert isinstance(document, dict), name
    return document


@cache
def _registry() -> Registry[Any]:
    """Every schema of ours, by ``$id``; a ``$ref`` to anything else is unresolvable."""
    from referencing import Registry, Resource

    names = sorted(entry.name for entry in schema_dir().iterdir() if entry.name.endswith(".json"))
    documents = [_load(name) for name in names]
    return Registry().with_resources(
        (document["$id"], Resource.from_contents(document)) for document in documents
    )


@cache
def validator(kind: str) -> Draft202012Validator:
    """The compiled validator of one kind, built on first use."""
    if kind not in KINDS:
        raise ValueError(f"unknown schema kind {kind!r}; known: {', '.join(KINDS)}")
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_load(kind + _SUFFIX), registry=_registry())


def _one_line(text: str, limit: int) -> str:
    """``text`` with control characters escaped, cut to at most ``limit`` characters."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text[: limit * 4])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(error: ValidationError) -> str:
    """jsonschema's message, but a pattern mismatch names what was expected, not the regex."""
    title = error.schema.get("title") if isinstance(error.schema, dict) else None
    if error.validator == "pattern" and isinstance(title, str):
        value = error.instance
        shown = repr(value[:_MESSAGE_LIMIT] if isinstance(value, str) else value)
        return f"{_one_line(shown, _MESSAGE_LIMIT // 2)} is not a valid {title}"
    return error.message


def validate(kind: str, instance: Any, origin: str) -> None:
    """Raise InputError naming ``origin`` and the JSON path when ``instance`` is invalid.

    The message is one line: ``{origin}: {json_path}: {what is wrong}``, cut short so
    that a huge instance never ends up in it. Unknown ``kind``: ValueError.
    """
    from jsonschema.exceptions import best_match

    error = best_match(validator(kind).iter_errors(instance))
    if error is None:
        return
    where = f"{_one_line(origin, _ORIGIN_LIMIT)}: {_one_line(error.json_path, _PATH_LIMIT)}"
    raise InputError(f"{where}: {_one_line(_message(error), _MESSAGE_LIMIT)}")
