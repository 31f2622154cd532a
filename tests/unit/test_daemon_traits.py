"""What a daemon can take, decided from its /version and /info (shapes as Docker 20.10,
Docker with the containerd image store and podman answer them)."""

from __future__ import annotations

from archiver.places.daemon.traits import DaemonTraits

DOCKER_20 = {"Version": "20.10.24", "ApiVersion": "1.41", "Components": [{"Name": "Engine"}]}
DOCKER_29 = {"Version": "29.0.0", "ApiVersion": "1.52", "Components": [{"Name": "Engine"}]}
PODMAN = {
    "ApiVersion": "1.41",
    "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}, {"Name": "Conmon"}],
}
GRAPHDRIVER = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}
CONTAINERD_STORE = {
    "Driver": "overlayfs",
    "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
}


def test_a_graphdriver_docker_20_takes_partial_archives_and_no_zstd() -> None:
    traits = DaemonTraits.of(DOCKER_20, GRAPHDRIVER)
    assert traits.takes_partial_archives
    assert traits.unreadable == {"zstd"}


def test_the_containerd_image_store_gets_every_layer_and_reads_zstd() -> None:
    traits = DaemonTraits.of(DOCKER_29, CONTAINERD_STORE)
    assert traits.containerd_store and not traits.takes_partial_archives
    assert traits.unreadable == frozenset()
    # a snapshotter of another name (stargz on Docker Desktop) is the same store
    stargz = {"Driver": "stargz", "DriverStatus": CONTAINERD_STORE["DriverStatus"]}
    assert not DaemonTraits.of(DOCKER_29, stargz).takes_partial_archives
    assert DaemonTraits.of(DOCKER_29, GRAPHDRIVER).takes_partial_archives


def test_podman_gets_whole_archives() -> None:
    traits = DaemonTraits.of(PODMAN, {"Driver": "vfs", "DriverStatus": None})
    assert traits.podman and not traits.takes_partial_archives


def test_odd_answers_take_the_careful_side() -> None:
    traits = DaemonTraits.of({"ApiVersion": "x.y"}, {"DriverStatus": "odd"})
    assert traits.unreadable == {"zstd"} and traits.takes_partial_archives
