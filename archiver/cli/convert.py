"""``archiver convert INPUT OUTPUT`` (and ``copy``): any readable place to any writable one."""

from __future__ import annotations

import click

from archiver.blobs.parts import Split
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.cli.transfer import request, run
from archiver.cli.transfer_options import Selection, compress_option, writer_options
from archiver.engine.transfer import PushOptions
from archiver.places.layout_writer import FORMATS
from archiver.places.transports import REGISTRY, parse_place


@click.command("convert")
@click.argument("source_name", metavar="INPUT")
@click.argument("target_name", metavar="OUTPUT")
@click.option("--to", "fmt", type=click.Choice(FORMATS), help="Output format (default: docker).")
@writer_options
@compress_option
def command(
    source_name: str,
    target_name: str,
    fmt: str | None,
    base: str | None,
    selection: Selection,
    zstd: ZstdOptions,
    split: Split | None,
    compress: str,
) -> None:
    """Convert INPUT (docker-save, hybrid, OCI dir/tar, bundle; compressed or not) to OUTPUT.

    Formats: docker (the hybrid docker-save + OCI tar, the default), oci (an OCI layout
    tar, "oci-archive"), oci-dir (an OCI layout directory), bundle (the hybrid as a
    seekable zstd file). Prefixes docker-archive:, oci-archive:, oci:, bundle: and
    docker-daemon: choose the place too. OUTPUT "-" writes a tar to standard output.
    """
    target = parse_place(target_name)
    into_registry = (fmt or target.format) == REGISTRY
    wanted = request(
        [parse_place(source_name)],
        target,
        fmt or target.format or "docker",
        selection,
        zstd=zstd,
        base=parse_place(base) if base else None,
        split=split,
        push=PushOptions(tag=",".join(target.names) or None, compress=compress)
        if into_registry
        else None,
    )
    run(wanted, selection)


copy_command = click.Command(
    "copy",
    callback=command.callback,
    params=command.params,
    help="Copy images between places, as skopeo names them: docker-archive:PATH, "
    "oci-archive:PATH, oci:PATH[:REF], bundle:PATH, docker-daemon:REF, containerd:[NS/]REF "
    "(the same as convert).",
)
