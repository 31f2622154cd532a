"""``archiver tag ARCHIVE SOURCE TARGET``: another name for an image, as ``docker tag``."""

from __future__ import annotations

import click

from archiver.cli.rewriting import changing, verify_option


@click.command("tag")
@click.argument("archive")
@click.argument("source", metavar="SOURCE_IMAGE")
@click.argument("target", metavar="TARGET_IMAGE")
@verify_option
def command(archive: str, source: str, target: str, verify: bool) -> None:
    """Name the image SOURCE_IMAGE of ARCHIVE TARGET_IMAGE too.

    A name another image had moves; that image is left dangling if it had no other.
    The archive is rewritten (a bundle's layers are copied without recompressing them)."""
    with changing(archive, verify=verify) as change:
        change.store.tag(source, target)
