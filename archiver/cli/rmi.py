"""``archiver rmi ARCHIVE IMAGE...``: untag and remove images, as ``docker rmi``."""

from __future__ import annotations

import click

from archiver.cli import output
from archiver.cli.rewriting import changing, dry_run_option, echo_dry_run, verify_option


@click.command("rmi")
@click.argument("archive")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("-f", "--force", is_flag=True, help="Remove by ID even if several names use it.")
@dry_run_option
@click.option("--json", "as_json", is_flag=True, help="What happened, as JSON.")
@verify_option
def command(
    archive: str, images: tuple[str, ...], force: bool, dry_run: bool, as_json: bool, verify: bool
) -> None:
    """Remove IMAGEs (by name: untag; by ID: every name) from ARCHIVE.

    An image is deleted when its last name goes, its layers when no remaining image uses
    them. All or nothing: if one IMAGE cannot be removed, the archive is left as it was."""
    with changing(archive, dry_run, quiet=as_json, verify=verify) as change:
        for image in images:
            change.events += change.store.remove(image, force)
    if as_json:
        click.echo(output.to_json(change.summary(dry_run)))
    else:
        for event in change.events:
            click.echo(str(event))
    echo_dry_run(dry_run)
