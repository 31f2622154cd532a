"""``archiver pull REF... -o OUT``: images from registries into a bundle (or archive)."""

from __future__ import annotations

import fnmatch
from dataclasses import replace

import click

from archiver.blobs.parts import Split
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.cli import common
from archiver.cli.common import insecure_option
from archiver.cli.transfer import request, run
from archiver.cli.transfer_options import (
    Selection,
    bundle_output_options,
    extras_options,
    keep_going_option,
    writer_options,
)
from archiver.errors import InputError
from archiver.model.extras import ExtrasFilter
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.places.transports import Place, parse_place


def expand(
    refs: tuple[str, ...], all_tags: bool, catalog: bool, patterns: tuple[str, ...]
) -> list[Reference]:
    """The references to pull: as given, every tag of each repository (``all_tags``), or
    every tag of every repository of each registry (``catalog``, filtered by globs)."""
    if catalog:
        found = []
        for registry in refs:
            client = common.registries().client(registry.strip("/"))
            for repository in client.catalog():
                if patterns and not any(fnmatch.fnmatchcase(repository, p) for p in patterns):
                    continue
                found += _tags(f"{registry.strip('/')}/{repository}")
        return found
    if patterns:
        raise InputError("--filter goes with --catalog")
    if all_tags:
        return [ref for text in refs for ref in _tags(text)]
    return [Reference.parse(text) for text in refs]


def _tags(repository: str) -> list[Reference]:
    ref = Reference.parse(repository, default_tag=False)
    if ref.tag is not None or ref.digest is not None:
        raise InputError(f"{repository}: --all-tags takes a repository, without a tag")
    tags = common.registries().client(ref.registry).tags(ref.repository)
    return [ref.with_tag(tag) for tag in sorted(tags)]


def registry_inputs(refs: list[Reference]) -> list[Place]:
    """One registry place per registry, holding its references."""
    by_registry: dict[str, list[str]] = {}
    for ref in refs:
        by_registry.setdefault(ref.registry, []).append(str(ref))
    return [Place.registry(tuple(names)) for names in by_registry.values()]


@click.command("pull")
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@bundle_output_options
@click.option("--all-platforms", is_flag=True, help="Every platform of multi-platform images.")
@click.option("-a", "--all-tags", is_flag=True, help="Every tag of each REPOSITORY.")
@click.option("--catalog", is_flag=True, help="REFs are registries: all their repositories.")
@click.option("--filter", "patterns", multiple=True, metavar="GLOB", help="With --catalog.")
@extras_options
@insecure_option
@keep_going_option
@writer_options
def command(
    refs: tuple[str, ...],
    output_path: str,
    fmt: str,
    all_platforms: bool,
    all_tags: bool,
    catalog: bool,
    patterns: tuple[str, ...],
    extras: ExtrasFilter,
    insecure: tuple[str, ...],
    keep_going: bool,
    base: str | None,
    selection: Selection,
    zstd: ZstdOptions,
    split: Split | None,
) -> None:
    """Pull images from registries into OUT, each blob once, every digest verified.

    By tag or digest; OCI and Docker manifests and indexes. Only this machine's platform
    of a multi-platform image unless --platform or --all-platforms. Each image's
    signatures, attestations and SBOMs (cosign's tags) and OCI referrers come along, with
    their digests unchanged, unless --no-extras."""
    common.registries(insecure)
    names = expand(refs, all_tags, catalog, patterns)
    if not names:
        raise InputError("nothing to pull: no repository or tag found")
    if not all_platforms and not selection.platforms:
        selection = replace(selection, platforms=(str(Platform.host()),))
    if all_platforms:
        selection = replace(selection, platforms=())
    # going on past a reference that fails needs each one opened on its own
    inputs = [Place.registry((str(n),)) for n in names] if keep_going else registry_inputs(names)
    wanted = request(
        inputs,
        parse_place(output_path),
        fmt,
        selection,
        zstd=zstd,
        keep_going=keep_going,
        base=parse_place(base) if base else None,
        split=split,
        extras=extras,
    )
    run(wanted, selection)
