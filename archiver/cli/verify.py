"""``archiver verify ARCHIVE``: every digest, size, diff_id and schema; exit 0 only if all hold."""

from __future__ import annotations

import sys

import click

from archiver.blobs import parts
from archiver.cli import common, output
from archiver.cli.common import is_delta
from archiver.engine import catalog, extras, signatures
from archiver.engine.verify import verify
from archiver.errors import InputError, IntegrityError
from archiver.places.base import Source


@click.command("verify")
@click.argument("archive")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.option("--json", "as_json", is_flag=True, help="A JSON summary.")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="PEM",
    help="Check cosign signatures with this public key (repeatable).",
)
@click.option(
    "--image", "images", multiple=True, metavar="REF", help="With --key: only this image."
)
def command(
    archive: str, quiet: bool, as_json: bool, keys: tuple[str, ...], images: tuple[str, ...]
) -> None:
    """Check every blob of ARCHIVE against its digest, and every layer against its diff_id.

    A bundle in parts (NAME.parts.json, NAME.001 or NAME) has each part checked against its
    manifest first, and a damaged, missing or foreign part named. With --key, each image
    (or each --image) must carry a cosign signature that the key verifies, offline."""
    if images and not keys:
        raise InputError("--image goes with --key: name the public key to check signatures")
    loaded = [signatures.load_key(path) for path in keys]
    split = parts.bundle_name(archive)
    if split is not None:
        damaged = parts.check_parts(split)
        if damaged:
            if as_json:
                click.echo(output.to_json({"ok": False, "problems": damaged}))
            else:
                for problem in damaged:
                    click.echo(f"Error: {problem}", err=True)
            sys.exit(IntegrityError.exit_code)
    with (
        common.opened(archive) as (source, _ref),
        common.progress("verify", quiet or as_json) as bar,
    ):
        delta = is_delta(source)
        report = verify(source, progress=bar, delta=delta is not None)
        checks = _signatures(source, loaded, images) if loaded else []
    unsigned = [c for c in checks if c.state != signatures.SIGNED]
    if as_json:
        click.echo(
            output.to_json(
                {
                    "ok": report.ok,
                    "images": report.images,
                    "blobs": report.blobs,
                    "bytes": report.bytes,
                    "problems": report.problems,
                    "delta_base": delta,
                    "left_to_base": [str(d) for d in report.left_to_base],
                    "signatures": [
                        {
                            "image": c.image,
                            "digest": str(c.digest),
                            "state": c.state,
                            "key": c.key,
                            "reason": c.reason or None,
                        }
                        for c in checks
                    ],
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
            if delta is not None:
                click.echo(
                    f"A delta against {delta}: {len(report.left_to_base)} layers left to "
                    f"the base (not in it, not checked)"
                )
        for check in checks:
            if check.state != signatures.SIGNED or not quiet:
                click.echo(check.line(), err=check.state != signatures.SIGNED)
    if not report.ok or unsigned:
        sys.exit(IntegrityError.exit_code)


def _signatures(
    source: Source, keys: list[signatures.Key], images: tuple[str, ...]
) -> list[signatures.ImageCheck]:
    """Each image asked for (all by default) checked against ``keys``."""
    records = catalog.records(source)
    chosen = catalog.select(records, list(images), source.origin)
    parted = extras.split(source)
    return [signatures.check_image(source, r.entry, parted, keys) for r in chosen]
