"""Validation is compiled (jsonschema-rs) and done once per document's bytes; jsonschema,
the reference, is loaded only for a document the fast validator refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from archiver import schema
from archiver.errors import InputError
from archiver.model import media

MANIFEST = {
    "schemaVersion": 2,
    "mediaType": media.OCI_MANIFEST,
    "config": {"mediaType": media.OCI_CONFIG, "digest": "sha256:" + "1" * 64, "size": 2},
    "layers": [{"mediaType": media.OCI_LAYER_GZIP, "digest": "sha256:" + "2" * 64, "size": 3}],
}


def test_same_bytes_are_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = schema.validate

    def counting(kind: str, instance: Any, origin: str) -> None:
        calls.append(kind)
        real(kind, instance, origin)

    monkeypatch.setattr(schema, "validate", counting)
    raw = json.dumps(dict(MANIFEST, annotations={"once": "yes"})).encode()
    first = schema.load("oci-manifest", raw, "a")
    second = schema.load("oci-manifest", bytes(bytearray(raw)), "b")  # equal bytes, other object
    assert first == second and first is not second  # each caller gets its own value
    assert calls == ["oci-manifest"]
    schema.load("oci-index", json.dumps({"schemaVersion": 2, "manifests": []}).encode(), "c")
    assert calls == ["oci-manifest", "oci-index"]


def test_invalid_bytes_are_refused_every_time() -> None:
    raw = json.dumps(dict(MANIFEST, config={"digest": "sha256:xyz"})).encode()
    for origin in ("first", "second"):
        with pytest.raises(InputError, match=f"^{origin}: \\$.config"):
            schema.load("oci-manifest", raw, origin)


def test_valid_documents_do_not_load_jsonschema() -> None:
    code = (
        "import json, sys\n"
        "from archiver import schema\n"
        f"schema.load('oci-manifest', json.dumps({MANIFEST!r}).encode(), 'x')\n"
        "assert 'jsonschema' not in sys.modules, 'jsonschema loaded'\n"
        "assert 'jsonschema_rs' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_fast_validator_and_the_reference_agree_on_every_kind() -> None:
    """Each kind compiles in both; a wrong type is refused by both."""
    for kind in schema.KINDS:
        assert not schema.fast_validator(kind).is_valid(17)
        assert not schema.validator(kind).is_valid(17)
