"""Validation of every JSON document we read or write against the schemas in ``schemas/``.

Schemas are ours (written from the OCI image-spec and the Docker image spec), JSON Schema
2020-12, one file per kind plus ``defs.json`` for what they share. They are loaded lazily,
once, into one registry keyed by ``$id``, so cross-file ``$ref``s resolve locally: never
over the network.

Two validators, one verdict. Every document goes through a compiled one (jsonschema-rs:
~100x faster than jsonschema on our documents; fastjsonschema cannot compile 2020-12
schemas). Only a document it refuses goes to jsonschema, whose best-match message is the
one we print (jsonschema-rs names the regex, not what was expected) and whose verdict is
final. jsonschema is imported only then: a command reading valid documents never loads it.

:func:`load` decodes and validates a document's bytes; the same bytes (same digest) are
validated once per process, however many places read them (a docker-save entry, its
layout entry, the catalog, the copy).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.errors import InputError
from archiver.model.json_decode import Memo, load_json

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from jsonschema_rs import Validator as FastValidator
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
VALIDATED_CACHE = 32 * 1024 * 1024
"""Bytes of documents remembered as valid (their bytes are the key: same digest)."""


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
def _documents() -> tuple[dict[str, Any], ...]:
    names = sorted(entry.name for entry in schema_dir().iterdir() if entry.name.endswith(".json"))
    return tuple(_load(name) for name in names)


@cache
def _registry() -> Registry[Any]:
    """Every schema of ours, by ``$id``; a ``$ref`` to anything else is unresolvable."""
    from referencing import Registry, Resource

    return Registry().with_resources(
        (document["$id"], Resource.from_contents(document)) for document in _documents()
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown schema kind {kind!r}; known: {', '.join(KINDS)}")


@cache
def validator(kind: str) -> Draft202012Validator:
    """jsonschema's validator of one kind (the reference: its verdict and its messages)."""
    _check_kind(kind)
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_load(kind + _SUFFIX), registry=_registry())


@cache
def fast_validator(kind: str) -> FastValidator:
    """The compiled (jsonschema-rs) validator of one kind, built on first use; formats are
    annotations (as in jsonschema), no resource is fetched (every $ref is ours)."""
    _check_kind(kind)
    import jsonschema_rs

    registry = jsonschema_rs.Registry([(d["$id"], d) for d in _documents()])
    return jsonschema_rs.validator_for(
        _load(kind + _SUFFIX), registry=registry, validate_formats=False
    )


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


def _fast_accepts(kind: str, instance: Any) -> bool:
    try:
        return bool(fast_validator(kind).is_valid(instance))
    except (ValueError, OverflowError, TypeError):
        return False  # what it cannot represent (a huge integer): jsonschema decides


def validate(kind: str, instance: Any, origin: str) -> None:
    """Raise InputError naming ``origin`` and the JSON path when ``instance`` is invalid.

    The message is one line: ``{origin}: {json_path}: {what is wrong}``, cut short so
    that a huge instance never ends up in it. Unknown ``kind``: ValueError.
    """
    if _fast_accepts(kind, instance):
        return
    from jsonschema.exceptions import best_match

    error = best_match(validator(kind).iter_errors(instance))
    if error is None:
        return
    where = f"{_one_line(origin, _ORIGIN_LIMIT)}: {_one_line(error.json_path, _PATH_LIMIT)}"
    raise InputError(f"{where}: {_one_line(_message(error), _MESSAGE_LIMIT)}")


_validated: Memo[bool] = Memo(VALIDATED_CACHE)


def validate_once(kind: str, raw: bytes, data: Any, origin: str) -> None:
    """:func:`validate` ``data``, decoded from ``raw``, unless these bytes were already
    found valid as ``kind`` in this process."""
    if _validated.get(kind, raw) is None:
        validate(kind, data, origin)
        _validated.put(kind, raw, True)


def load(kind: str, raw: bytes, origin: str) -> Any:
    """Decode ``raw`` (strict JSON) and validate it once as ``kind`` (InputError naming
    ``origin`` when it is not); a fresh decoded value each call."""
    data = load_json(raw, origin)
    validate_once(kind, raw, data, origin)
    return data
