"""``archiver load ARCHIVE``: images into a Docker daemon (or containerd), sending only what
it lacks."""

from __future__ import annotations

import click

from archiver.cli.transfer import request, run
from archiver.cli.transfer_options import Selection, keep_going_option, selection_options
from archiver.places.containerd import DEFAULT_NAMESPACE, DEFAULT_SOCKET
from archiver.places.transports import CONTAINERD, DAEMON, Place, parse_place


@click.command("load")
@click.argument("archive")
@click.option("--tag", "retag", metavar="NEW_REF", help="Load the (one) image under this name.")
@click.option(
    "--containerd",
    "containerd",
    metavar="[SOCKET]",
    is_flag=False,
    flag_value=DEFAULT_SOCKET,
    default=None,
    help=f"Load into containerd instead, at SOCKET (default {DEFAULT_SOCKET}); write it "
    "after ARCHIVE.",
)
@click.option(
    "--namespace",
    metavar="NS",
    default=None,
    help=f"containerd's namespace to load into (default $CONTAINERD_NAMESPACE, else "
    f"{DEFAULT_NAMESPACE}, as kubelet uses).",
)
@keep_going_option
@selection_options
def command(
    archive: str,
    retag: str | None,
    containerd: str | None,
    namespace: str | None,
    keep_going: bool,
    selection: Selection,
) -> None:
    """Load ARCHIVE (any archive or bundle) into the Docker daemon at DOCKER_HOST, or with
    --containerd into containerd.

    Layers whose chains the daemon already holds are not sent. Prints docker's
    `Loaded image: REF` lines. Into containerd, blobs its content store holds are not sent;
    images are unpacked into its snapshotter ($CONTAINERD_SNAPSHOTTER, else the namespace's
    default, else overlayfs, else native) and named in full (docker.io/library/nginx:1.25).
    See docs/CONTAINERD.md.
    """
    if namespace is not None and containerd is None:
        raise click.UsageError("--namespace is for --containerd")
    if containerd is not None:
        target, fmt = Place.containerd(containerd, namespace), CONTAINERD
    else:
        target, fmt = Place.daemon(), DAEMON
    wanted = request(
        [parse_place(archive)],
        target,
        fmt,
        selection,
        retag=retag,
        keep_going=keep_going,
    )
    run(wanted, selection)
