"""Validation of every JSON document we read or write against the schemas in ``schemas/``.

Schemas are ours (written from the OCI image-spec and the Docker image spec), JSON Schema
2020-12, loaded once, with cross-file ``$ref``s resolved locally: never over the network.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from archiver.errors import InputError

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
)
_MESSAGE_LIMIT = 200


def schema_dir() -> Path:
    """``archiver/schemas`` in an installed wheel, ``schemas/`` in a checkout."""
    packaged = Path(str(resources.files("archiver"))) / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas"


@cache
def _registry() -> Registry:
    resources_ = []
    for path in sorted(schema_dir().glob("*.json")):
        document = json.loads(path.read_text())
        resources_.append((document["$id"], Resource.from_contents(document)))
    return Registry().with_resources(resources_)


@cache
def validator(kind: str) -> Draft202012Validator:
    if kind not in KINDS:
        raise ValueError(f"unknown schema kind {kind!r}")
    document = json.loads((schema_dir() / f"{kind}.schema.json").read_text())
    return Draft202012Validator(document, registry=_registry())


def validate(kind: str, instance: Any, origin: str) -> None:
    """Raise InputError naming ``origin`` and the JSON path when ``instance`` is invalid."""
    error = best_match(validator(kind).iter_errors(instance))
    if error is None:
        return
    message = error.message
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 1] + "…"
    raise InputError(f"{origin}: {error.json_path}: {message}")
