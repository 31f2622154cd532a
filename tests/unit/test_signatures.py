"""Offline cosign verification: real cosign output (public fixtures), signatures the tests
make with ECDSA P-256, RSA and Ed25519 keys, and bad input that must fail closed."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from archiver.engine import signatures
from archiver.errors import InputError
from archiver.model.digest import Digest
from tests import cosign_format as cf
from tests.conftest import Run, fixture_path
from tests.extras_layout import signed_layout

FIXTURES = "containers-image/signature/fixtures"


def _read(path: Path) -> bytes:
    """A fixture file; upstream's symlinks are stored as files holding their target."""
    raw = path.read_bytes()
    if raw.startswith(b"../") and (path.parent / raw.decode()).is_file():
        return _read(path.parent / raw.decode())
    return raw


def _fixture_signature(path: Path) -> tuple[bytes, str]:
    """containers/image's sigstore-json file: the payload and its base64 signature."""
    raw = _read(path)
    data = json.loads(raw[raw.index(b"{") :])
    signed = data["annotations"].get("dev.cosignproject.cosign/signature")
    return base64.b64decode(data["payload"]), signed


def _fixture_digest(folder: Path) -> Digest:
    """The image's manifest digest (no manifest: a digest nothing signed)."""
    manifest = folder / "manifest.json"
    raw = _read(manifest) if manifest.exists() else b"no manifest"
    return Digest.parse("sha256:" + hashlib.sha256(raw).hexdigest())


def _check(folder: str, signature: str, key: str = "cosign.pub") -> signatures.Check:
    base = fixture_path(FIXTURES)
    payload, signed = _fixture_signature(base / folder / signature)
    keys = [signatures.load_key(str(base / key))]
    return signatures.check_payload(payload, signed, _fixture_digest(base / folder), keys)


def test_real_cosign_signatures() -> None:
    valid = _check("dir-img-cosign-valid", "signature-1")
    assert valid.state == signatures.SIGNED and valid.key is not None
    assert valid.key.endswith("cosign.pub")
    assert _check("dir-img-cosign-valid-with-tag", "signature-1").state == signatures.SIGNED
    # two signatures of one image (both by cosign.pub, whatever SOURCES.md says of the
    # second); cosign2.pub, another key, verifies neither
    for n in (1, 2):
        assert _check("dir-img-cosign-valid-2", f"signature-{n}").state == signatures.SIGNED
        other = _check("dir-img-cosign-valid-2", f"signature-{n}", "cosign2.pub")
        assert other.state == signatures.BAD
    mixed = [_check("dir-img-cosign-mixed", f"signature-{n}").state for n in (1, 2)]
    assert sorted(mixed) == [signatures.BAD, signatures.SIGNED]


def test_real_cosign_signatures_that_must_fail() -> None:
    named_other = _check("dir-img-cosign-manifest-digest-error", "signature-1")
    assert named_other.state == signatures.BAD and "another manifest" in named_other.reason
    assert _check("dir-img-cosign-modified-manifest", "signature-1").state == signatures.BAD
    assert _check("dir-img-cosign-other-attachment", "signature-1").state == signatures.BAD
    assert _check("dir-img-cosign-no-manifest", "signature-1").state == signatures.BAD
    base = fixture_path(FIXTURES)
    payload, signed = _fixture_signature(base / "unknown-cosign-key.signature")
    named = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
    keys = [signatures.load_key(str(base / k)) for k in ("cosign.pub", "cosign2.pub")]
    unknown = signatures.check_payload(payload, signed, Digest.parse(named), keys)
    assert unknown.state == signatures.BAD and "no key" in unknown.reason


@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
def test_signatures_made_with_each_algorithm(kind: str, tmp_path: Path) -> None:
    key = cf.new_key(kind)
    (tmp_path / "key.pub").write_bytes(cf.public_pem(key))
    loaded = signatures.load_key(str(tmp_path / "key.pub"))
    subject = Digest.from_bytes(b"image")
    body = cf.payload("example.com/app", str(subject))
    good = base64.b64encode(cf.sign(key, body)).decode()
    assert signatures.check_payload(body, good, subject, [loaded]).state == signatures.SIGNED
    tampered = body.replace(b"example.com", b"example.org")
    assert signatures.check_payload(tampered, good, subject, [loaded]).state == signatures.BAD
    other = Digest.from_bytes(b"other")
    assert signatures.check_payload(body, good, other, [loaded]).state == signatures.BAD
    assert signatures.check_payload(body, "%%%", subject, [loaded]).state == signatures.BAD
    assert signatures.check_payload(body, None, subject, [loaded]).state == signatures.BAD
    stranger = signatures.load_key(str(_pem(tmp_path / "stranger.pub", cf.new_key(kind))))
    assert signatures.check_payload(body, good, subject, [stranger]).state == signatures.BAD


def _pem(path: Path, key: cf.PrivateKey) -> Path:
    path.write_bytes(cf.public_pem(key))
    return path


def test_bad_keys_are_named_in_one_line(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec

    (tmp_path / "junk.pub").write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n")
    with pytest.raises(InputError, match=r"junk\.pub: not a PEM public key"):
        signatures.load_key(str(tmp_path / "junk.pub"))
    dsa_key = dsa.generate_private_key(2048).public_key()
    pem = dsa_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "dsa.pub").write_bytes(pem)
    with pytest.raises(InputError, match="unknown key algorithm"):
        signatures.load_key(str(tmp_path / "dsa.pub"))
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InputError, match="only P-256"):
        signatures.load_key(str(_pem(tmp_path / "p384.pub", p384)))
    with pytest.raises(InputError, match=r"missing\.pub"):
        signatures.load_key(str(tmp_path / "missing.pub"))


def test_verify_key_on_an_archive(run: Run, tmp_path: Path) -> None:
    key = cf.new_key("ed25519")
    archive, _, _ = signed_layout(tmp_path / "oci", key, other=True)
    pub = _pem(tmp_path / "k.pub", key)
    only_app = run("verify", archive, "--key", pub, "--image", "example.com/app:1")
    assert only_app.code == 0, only_app.err
    assert f"example.com/app:1: signed by {pub}" in only_app.out
    everything = run("verify", archive, "--key", pub)
    assert everything.code == 3
    assert "example.com/tool:1: no signature" in everything.err
    stranger = _pem(tmp_path / "s.pub", cf.new_key("ed25519"))
    bad = run("verify", archive, "--key", stranger, "--image", "example.com/app:1", "--json")
    assert bad.code == 3
    report = json.loads(bad.out)["signatures"]
    assert [(r["image"], r["state"]) for r in report] == [("example.com/app:1", "bad signature")]
    assert run("verify", archive, "--image", "example.com/app:1").code == 2
    junk = tmp_path / "junk.pub"
    junk.write_text("nonsense")
    failed = run("verify", archive, "--key", junk)
    assert failed.code == 2 and failed.err.count("\n") == 1


def test_a_signature_tag_naming_another_digest_fails_closed(run: Run, tmp_path: Path) -> None:
    from tests.extras_layout import image, layout

    key = cf.new_key("rsa")
    app, other = image(b"app\n"), image(b"other\n")
    stolen = cf.signature(key, "example.com/app", other.digest)  # valid, but of other
    archive = layout(
        tmp_path / "oci",
        [(app, "example.com/app:1"), (stolen, f"example.com/app:sha256-{app.digest[7:]}.sig")],
    )
    pub = _pem(tmp_path / "k.pub", key)
    got = run("verify", archive, "--key", pub)
    assert got.code == 3
    assert (
        f"example.com/app:1: bad signature (the payload names another manifest, {other.digest})"
        in got.err
    )
