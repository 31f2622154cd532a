"""What tag, rmi and prune share: open an archive as an image store, change it, write it back.

Nothing is written when the change fails, changes nothing, or is a dry run; the lines of
what happened are printed only once the archive has been replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from archiver.cli import common
from archiver.engine.image_store import DELETED, UNTAGGED, Event, ImageStore
from archiver.engine.rewrite import open_for_rewrite
from archiver.model.digest import Digest


@dataclass
class Change:
    store: ImageStore
    held: dict[Digest, int]
    """Every blob the archive held before the change, with its size."""
    events: list[Event] = field(default_factory=list)

    def freed(self) -> int:
        """Bytes of the blobs the archive will no longer hold."""
        kept = self.store.blob_sizes()
        return sum(size for digest, size in self.held.items() if digest not in kept)

    def summary(self, dry_run: bool) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "untagged": [e.name for e in self.events if e.kind == UNTAGGED],
            "deleted": [e.name for e in self.events if e.kind == DELETED],
            "reclaimed": self.freed(),
            "dry_run": dry_run,
        }


@contextlib.contextmanager
def changing(
    archive: str, dry_run: bool = False, quiet: bool = False, verify: bool = False
) -> Iterator[Change]:
    """An ``ImageStore`` of ``archive`` to change; written back when the block ends well
    (``verify``: the layers copied as they are hashed on the way too)."""
    with open_for_rewrite(archive, lambda line: click.echo(line, err=True)) as target:
        store = ImageStore(target.source)
        before = store.entries()
        change = Change(store, target.stored_blobs() | store.blob_sizes())
        yield change
        if dry_run or (store.entries() == before and not change.freed()):
            return
        with common.progress("rewrite", quiet) as bar:
            target.write(store.entries(), bar, verify)


def dry_run_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--dry-run", is_flag=True, help="Say what would be removed; change nothing."
    )(func)


def verify_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--verify",
        is_flag=True,
        help="Check every layer against its digest while rewriting (a bundle's layers are "
        "otherwise copied unread, checked only against its seek table).",
    )(func)


def echo_dry_run(dry_run: bool) -> None:
    if dry_run:
        click.echo("Dry run: the archive was not changed.", err=True)
