"""``archiver prune ARCHIVE``: remove dangling images and unreferenced blobs, as
``docker image prune``."""

from __future__ import annotations

import click

from archiver.cli import output
from archiver.cli.rewriting import changing, dry_run_option, echo_dry_run, verify_option

_WARNING = {
    False: "WARNING! This will remove all dangling images.",
    True: "WARNING! This will remove all images without a tag.",
}


@click.command("prune")
@click.argument("archive")
@click.option("-a", "--all", "untagged", is_flag=True, help="Remove every image without a tag.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@dry_run_option
@click.option("--json", "as_json", is_flag=True, help="What happened, as JSON.")
@verify_option
def command(
    archive: str, untagged: bool, force: bool, dry_run: bool, as_json: bool, verify: bool
) -> None:
    """Remove dangling images (-a: every untagged image), then blobs nothing references.

    An archive holds no containers, so -a keeps tagged images: docker's `image prune -a`
    also removes tagged images that no container uses."""
    if not (force or dry_run):
        click.confirm(f"{_WARNING[untagged]}\nAre you sure you want to continue?", abort=True)
    with changing(archive, dry_run, quiet=as_json, verify=verify) as change:
        change.events += change.store.prune(untagged)
    if as_json:
        click.echo(output.to_json(change.summary(dry_run)))
    else:
        if change.events:
            click.echo("Deleted Images:")
            for event in change.events:
                click.echo(f"{event.kind.lower()}: {event.name}")
            click.echo()
        click.echo(f"Total reclaimed space: {output.human_size(change.freed())}")
    echo_dry_run(dry_run)
