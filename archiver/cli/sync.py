"""``archiver sync FILE... -o OUT | --to REGISTRY[/NS]``: the images that list files name
(Hauler, skopeo sync, mindthegap, regsync, archiver's own), collected into a bundle or
mirrored into a registry; a second run costs only what changed."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from archiver.blobs.parts import Split
from archiver.blobs.regular_file import read_text_file
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.cli import common, output
from archiver.cli.common import insecure_option
from archiver.cli.transfer_options import (
    Selection,
    extras_options,
    jobs_option,
    keep_going_option,
    writer_options,
)
from archiver.engine.sync import SyncRequest, SyncResult, platforms_for, sync
from archiver.errors import ArchiverError, InputError
from archiver.model.extras import ExtrasFilter
from archiver.model.sync_lists import SyncList, read_list
from archiver.model.sync_lists.yaml_text import MAX_LIST
from archiver.places.layout_writer import FORMATS
from archiver.places.transports import parse_place

if TYPE_CHECKING:
    from archiver.engine.transfer import Reporter


def read_lists(paths: tuple[str, ...]) -> list[SyncList]:
    found = []
    for path in paths:
        found.append(read_list(read_text_file(path, MAX_LIST, "list file"), path))
    return found


@click.command("sync")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("-o", "--output", "output_path", metavar="OUT.tar.zst", help="Collect into OUT.")
@click.option("--to", "to", metavar="REGISTRY[/NAMESPACE]", help="Mirror into a registry.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f for f in FORMATS if f != "oci-dir"]),
    default="bundle",
    show_default=True,
    help="Format of OUT.",
)
@click.option("--all-platforms", is_flag=True, help="Every platform of multi-platform images.")
@click.option("--prune", is_flag=True, help="Drop images of OUT that no list names any more.")
@click.option("--dry-run", is_flag=True, help="Say what would be fetched (sizes); write nothing.")
@jobs_option("Images looked up and fetched (and blobs uploaded) at once.")
@extras_options
@insecure_option
@keep_going_option
@writer_options
def command(
    files: tuple[str, ...],
    output_path: str | None,
    to: str | None,
    fmt: str,
    all_platforms: bool,
    prune: bool,
    dry_run: bool,
    jobs: int,
    extras: ExtrasFilter,
    insecure: tuple[str, ...],
    keep_going: bool,
    base: str | None,
    selection: Selection,
    zstd: ZstdOptions,
    split: Split | None,
) -> None:
    """Collect or mirror the images that FILEs list, as often as the lists change.

    FILEs are Hauler manifests (kind: Images), skopeo sync files, mindthegap image files,
    regsync configs or archiver sync lists (docs/SYNC.md), recognised by their content.
    When OUT exists, only what changed is fetched: unchanged images are copied from it
    as they are, a moved tag's new image replaces the old, and with nothing new OUT is
    left untouched. Credentials come from docker's config (or as a list says).

    Each image keeps the platforms its list item names, else --platform (or every one
    with --all-platforms), else its list's default, else this machine's. Signatures,
    attestations, SBOMs and referrers come along unless --no-extras (or an item's
    exclude-extras)."""
    if (output_path is None) == (to is None):
        raise InputError("say where: -o OUT (a bundle) or --to REGISTRY[/NAMESPACE]")
    if output_path == "-":
        raise InputError("-o -: sync writes a file (the next run reads it back)")
    if selection.images:
        raise InputError("--image: the lists say which images")
    if to is not None and (base or split or prune):
        raise InputError("--base, --split-size and --prune write a bundle: not with --to")
    lists = read_lists(files)
    registries = common.registries(insecure)
    given = common.parse_platforms(selection.platforms)
    platforms = platforms_for(given, all_platforms)
    request = SyncRequest(
        lists,
        output_path,
        fmt,
        to,
        platforms,
        prune=prune,
        dry_run=dry_run,
        keep_going=keep_going,
        jobs=jobs,
        zstd=zstd,
        split=split,
        base=parse_place(base) if base else None,
        extras=extras,
        platforms_given=bool(given) or all_platforms,
    )
    quiet = selection.quiet or selection.as_json

    def on_event(line: str) -> None:
        if not quiet:
            click.echo(line)

    def reporter() -> Reporter:
        from archiver.cli.transfer import _Reporter  # the transfer's, when one runs

        return _Reporter(quiet, selection.as_json)

    result = sync(request, on_event, reporter, registries)
    _render(request, result, replace(selection, quiet=quiet))


def _render(request: SyncRequest, result: SyncResult, selection: Selection) -> None:
    plan = result.plan
    where = request.output or request.to or ""
    for line in plan.warnings:
        click.echo(f"warning: {line}", err=True)
    left_out = list(plan.left_out)
    if result.transfer is not None:
        left_out += [
            {"image": r["image"], "reason": r.get("reason", "")}
            for r in result.transfer.per_image or []
            if r["status"] != "ok"
        ]
        left_out += [
            {"image": i["input"], "reason": i["reason"]} for i in result.transfer.skipped_inputs
        ]
    summary: dict[str, Any] = {
        "output": where,
        "added": [i.name for i in plan.added],
        "updated": [i.name for i in plan.updated],
        "kept": [i.name for i in plan.kept] + plan.held_back,
        "removed": plan.removed,
        "no_longer_listed": plan.held_back,
        "left_out": left_out,
        "warnings": plan.warnings,
        "unchanged": result.unchanged,
        "dry_run": request.dry_run,
    }
    if request.dry_run:
        summary["sizes"] = result.sizes
    if selection.as_json:
        click.echo(output.to_json(summary))
    else:
        for item in left_out:
            click.echo(f"Left out {item['image']}: {item['reason']}", err=True)
    if not selection.quiet:
        if request.dry_run:
            for name, size in result.sizes.items():
                click.echo(f"Would fetch {name} ({output.human_size(size)})")
            total = output.human_size(sum(result.sizes.values()))
            click.echo(f"Would fetch {len(result.sizes)} images, {total} at most")
        counts = (
            f"{len(plan.added)} added, {len(plan.updated)} updated, "
            f"{len(summary['kept'])} kept, {len(plan.removed)} removed"
        )
        if plan.held_back:
            counts += f" ({len(plan.held_back)} no longer listed, kept: --prune drops them)"
        if result.unchanged:
            click.echo(f"Nothing new: {where} left as it was (not rewritten): {counts}")
        elif request.dry_run:
            click.echo(f"Dry run, nothing written to {where}: {counts}")
        else:
            click.echo(f"Synced {where}: {counts}")
    if left_out:
        raise ArchiverError(f"{len(left_out)} images left out (the output holds the rest)")
