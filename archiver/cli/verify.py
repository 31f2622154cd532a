"""``archiver verify ARCHIVE``: every digest, size, diff_id and schema; exit 0 only if all hold."""

from __future__ import annotations

import sys

import click

from archiver.cli import common, output
from archiver.engine.verify import verify
from archiver.errors import IntegrityError


@click.command("verify")
@click.argument("archive")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.option("--json", "as_json", is_flag=True, help="A JSON summary.")
def command(archive: str, quiet: bool, as_json: bool) -> None:
    """Check every blob of ARCHIVE against its digest, and every layer against its diff_id."""
    with (
        common.opened(archive) as (source, _ref),
        common.progress("verify", quiet or as_json) as bar,
    ):
        report = verify(source, progress=bar)
    if as_json:
        click.echo(
            output.to_json(
                {
                    "ok": report.ok,
                    "images": report.images,
                    "blobs": report.blobs,
                    "bytes": report.bytes,
                    "problems": report.problems,
                }
            )
        )
    else:
        for problem in report.problems:
            click.echo(f"Error: {problem}", err=True)
        if not quiet:
            state = "OK" if report.ok else f"FAILED ({len(report.problems)} problems)"
            click.echo(
                f"{archive}: {state}: {report.images} images, {report.blobs} blobs, "
                f"{output.human_size(report.bytes)} verified"
            )
    if not report.ok:
        sys.exit(IntegrityError.exit_code)
