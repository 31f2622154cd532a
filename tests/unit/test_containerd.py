"""containerd place without a containerd: the messages' wire bytes, the transport's names,
namespaces, the labels that keep an image's blobs, sockets that are not there."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from archiver.errors import InputError, NotFound
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.places.containerd.client import ContainerdClient, check_namespace
from archiver.places.containerd.images import child_labels
from archiver.places.containerd.messages import message
from archiver.places.transports import CONTAINERD, Place, parse_place


def field(number: int, wire: int) -> bytes:
    return bytes([number << 3 | wire])


def length(number: int, data: bytes) -> bytes:
    return field(number, 2) + bytes([len(data)]) + data


def test_a_write_request_has_containerd_field_numbers() -> None:
    request = message("WriteContentRequest")(
        action=2, ref="r", total=5, expected="sha256:ab", offset=3, data=b"abc", labels={"k": "v"}
    )
    want = (
        field(1, 0) + b"\x02"
        + length(2, b"r")
        + field(3, 0) + b"\x05"
        + length(4, b"sha256:ab")
        + field(5, 0) + b"\x03"
        + length(6, b"abc")
        + length(7, length(1, b"k") + length(2, b"v"))
    )  # fmt: skip
    assert request.SerializeToString() == want


def test_replies_with_fields_we_do_not_declare_parse() -> None:
    timestamp = field(1, 0) + b"\x07"  # seconds = 7
    info = (
        length(1, b"sha256:ab")
        + field(2, 0) + b"\x09"
        + length(3, timestamp)  # created_at: not declared here
        + length(5, length(1, b"a") + length(2, b"b"))
    )  # fmt: skip
    reply = message("InfoResponse").FromString(length(1, info))
    assert (reply.info.digest, reply.info.size, dict(reply.info.labels)) == (
        "sha256:ab",
        9,
        {"a": "b"},
    )


def test_an_image_record_and_its_target() -> None:
    target = message("Descriptor")(media_type="m", digest="d", size=1)
    raw = message("Image")(name="n", target=target).SerializeToString()
    assert raw == length(1, b"n") + length(3, length(1, b"m") + length(2, b"d") + b"\x18\x01")


@pytest.mark.parametrize(
    ("text", "namespace", "names"),
    [
        ("containerd:", None, ()),
        ("containerd:k8s.io/", "k8s.io", ()),
        ("containerd:docker.io/library/nginx:1.25", None, ("docker.io/library/nginx:1.25",)),
        ("containerd:nginx:1.25", None, ("nginx:1.25",)),
        ("containerd:registry.k8s.io/pause:3.9", None, ("registry.k8s.io/pause:3.9",)),
        (
            "containerd:k8s.io/docker.io/library/nginx:1.25",
            "k8s.io",
            ("docker.io/library/nginx:1.25",),
        ),
        ("containerd:default/localhost:5000/a/b:1", "default", ("localhost:5000/a/b:1",)),
        (
            "containerd:ns/docker.io/a/b:1,docker.io/c/d:2",
            "ns",
            ("docker.io/a/b:1", "docker.io/c/d:2"),
        ),
    ],
)
def test_containerd_places(text: str, namespace: str | None, names: tuple[str, ...]) -> None:
    place = parse_place(text)
    assert (place.format, place.path, place.namespace, place.names) == (
        CONTAINERD,
        "",
        namespace,
        names,
    )
    assert parse_place(str(place)) == place


def test_a_load_target_names_its_socket() -> None:
    place = Place.containerd("/run/c.sock", "k8s.io")
    assert (place.path, place.namespace, str(place)) == (
        "/run/c.sock",
        "k8s.io",
        "containerd:k8s.io/",
    )


@pytest.mark.parametrize("name", ["k8s.io", "default", "a-b_c.d", "x" * 76, "A1"])
def test_valid_namespaces(name: str) -> None:
    assert check_namespace(name) == name


@pytest.mark.parametrize("name", ["", "a/b", "-a", "a..b", "a_", "x" * 77, "ä", "a b", "a\n"])
def test_invalid_namespaces(name: str) -> None:
    with pytest.raises(InputError, match=r"namespace .* is invalid"):
        check_namespace(name)


def digest(n: int) -> Digest:
    return Digest.parse(f"sha256:{n:064x}")


def test_children_are_labelled_as_containerd_labels_them() -> None:
    children = [
        Descriptor(media.OCI_CONFIG, digest(1), 1),
        Descriptor(media.OCI_LAYER_GZIP, digest(2), 1),
        Descriptor(media.DOCKER_LAYER_TAR, digest(3), 1),
    ]
    assert child_labels(children) == {
        "containerd.io/gc.ref.content.config": str(digest(1)),
        "containerd.io/gc.ref.content.l.0": str(digest(2)),
        "containerd.io/gc.ref.content.l.1": str(digest(3)),
    }
    index_children = [
        Descriptor(media.OCI_MANIFEST, digest(4), 1),
        Descriptor(media.DOCKER_MANIFEST, digest(5), 1),
        Descriptor(media.OCI_INDEX, digest(6), 1),
    ]
    assert child_labels(index_children) == {
        "containerd.io/gc.ref.content.m.0": str(digest(4)),
        "containerd.io/gc.ref.content.m.1": str(digest(5)),
        "containerd.io/gc.ref.content.0": str(digest(6)),
    }


def test_a_socket_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"containerd socket .*missing\.sock: No such file"):
        ContainerdClient(str(tmp_path / "missing.sock"))
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="not a socket"):
        ContainerdClient(str(tmp_path / "file"))


def test_an_invalid_namespace_is_refused_before_connecting(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        with pytest.raises(InputError, match="namespace"):
            ContainerdClient(path, "no/slash")
