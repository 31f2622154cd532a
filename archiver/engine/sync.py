"""``sync``: the images that lists name, collected into a bundle or mirrored into a
registry, again and again, each run costing only what changed.

The plan (``sync_plan``): tags resolved against the registries, a manifest HEAD per image,
compared with what the output holds. Then one ordinary transfer (``engine.transfer``, the
machinery of ``pull`` and ``push --to``) does the writing:

- into a bundle that exists, its inputs are the earlier bundle (its layers' frames copied
  as they are, unread) and the registries for what was added or moved; a moved tag's new
  image takes the name (``prefer="last"``); names no list gives now stay unless
  ``prune``. With nothing new, the bundle is not written at all (byte-identical);
- into a registry, only images the target lacks (or holds under an older digest) are
  pushed, and of those only the blobs it lacks.

What list items say of single images travels to the transfer as ``PerImage``: the
platforms an item names (else ``--platform``, else its list's default, else the
command's default), ``exclude-extras``, and Hauler's ``rewrite`` (the name the image is
written under). A mirror runs one transfer per set of platforms (a push keeps one set).
Into a bundle, images are fetched at once into spools first (``sync_fetch``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from archiver.blobs.lock import locked
from archiver.blobs.parts import Split
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.engine.sync_earlier import EarlierOutput, output_exists
from archiver.engine.sync_fetch import share_out, spooled, threads_each
from archiver.engine.sync_plan import (
    Plan,
    Wanted,
    against_archive,
    against_registry,
    heads,
    held_in_part,
    item_platforms,
    wanted_images,
)
from archiver.errors import InputError
from archiver.model.extras import ExtrasFilter
from archiver.model.per_image import PerImage
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.model.sync_lists import SyncList
from archiver.places.registry.credentials import Credentials
from archiver.places.registry.registries import Registries
from archiver.places.transports import REGISTRY, Place

if TYPE_CHECKING:  # the transfer machinery is imported only when something is written
    from archiver.engine.transfer import Reporter, TransferRequest, TransferResult


@dataclass
class SyncRequest:
    lists: list[SyncList]
    output: str | None = None
    """A bundle (or archive) to write; or ``to``, a registry."""
    fmt: str = "bundle"
    to: str | None = None
    platforms: list[Platform] | None = None
    """What an image whose list item names no platform keeps (None: every platform)."""
    platforms_given: bool = False
    """``--platform`` or ``--all-platforms`` was given: it wins over a list's default."""
    prune: bool = False
    dry_run: bool = False
    keep_going: bool = False
    jobs: int = 4
    zstd: ZstdOptions | None = None
    split: Split | None = None
    base: Place | None = None
    extras: ExtrasFilter = field(default_factory=ExtrasFilter)


@dataclass
class SyncResult:
    plan: Plan
    unchanged: bool = False
    """The output exists and nothing changed: it was not written."""
    sizes: dict[str, int] = field(default_factory=dict)
    """With ``dry_run``: bytes each image to fetch would bring."""
    transfer: TransferResult | None = None


def platforms_for(given: list[Platform] | None, every: bool) -> list[Platform] | None:
    """The platforms an image keeps when neither its list item nor its list names any (or
    when they are given): every one, those given, else this machine's."""
    if every:
        return None
    return given or [Platform.host()]


def per_image(items: list[Wanted], given: bool) -> PerImage:
    """What the lists say of single images, by the names (and digests) the transfer
    finds them by: before a rewrite (a registry) and after (an earlier output)."""
    platforms: dict[str, tuple[Platform, ...]] = {}
    no_extras: set[str] = set()
    names: dict[str, Reference] = {}
    for item in items:
        keys = {item.source, item.name}
        if item.ref.digest is not None:
            keys.add(str(item.ref.digest))
        named = item_platforms(item, given)
        if named:
            platforms.update(dict.fromkeys(keys, tuple(Platform.parse(p) for p in named)))
        if item.spec.exclude_extras:
            no_extras |= keys
        if item.out is not None:
            names[item.source] = item.out
    return PerImage(platforms, frozenset(no_extras), names)


def sync(
    request: SyncRequest,
    on_event: Callable[[str], None],
    reporter: Callable[[], Reporter],
    registries: Registries,
) -> SyncResult:
    """Plan, then (unless a dry run, or nothing changed) write through one transfer;
    ``on_event`` hears of each image to fetch, ``reporter`` makes what the transfer tells."""
    _apply_settings(request.lists, registries)
    plan = Plan(warnings=[w for found in request.lists for w in found.warnings])
    jobs, going = request.jobs, request.keep_going
    earlier = None if request.output is None else EarlierOutput(request.output)
    with contextlib.ExitStack() as planning, ThreadPoolExecutor(1) as aside:
        if earlier is not None:
            planning.callback(earlier.close)
        # the earlier output's index is read while the registries answer the HEADs
        held = None if earlier is None else aside.submit(earlier.entries)
        wanted = heads(
            wanted_images(request.lists, registries, jobs, plan, going),
            registries,
            jobs,
            plan,
            going,
        )
        if request.to is not None:
            against_registry(wanted, _targets(wanted, request.to), registries, jobs, plan)
        else:
            assert held is not None and earlier is not None
            against_archive(wanted, held.result(), request.prune, plan)
            given, default = request.platforms_given, request.platforms
            more = held_in_part(earlier.source, plan.kept, given, default)
            if more:  # the list wants more platforms than OUT has for these
                moving = {id(item) for item in more}
                plan.kept = [item for item in plan.kept if id(item) not in moving]
                plan.updated += more
    result = SyncResult(plan)
    if not wanted and not plan.held_back:
        raise InputError(
            "nothing to sync: the lists name no image"
            + (f" ({len(plan.left_out)} left out)" if plan.left_out else "")
            + (" (--prune would leave the output empty)" if plan.removed else "")
        )
    updating = {id(item) for item in plan.updated}  # not ``in``: items compare field by field
    for item in plan.fetch:
        on_event(f"{'Updating' if id(item) in updating else 'Adding'} {item.name}")
    if request.dry_run:
        result.sizes = _sizes(plan.fetch, registries, request)
        return result
    if request.to is not None:
        if plan.fetch:
            result.transfer = _mirror(request, plan, reporter(), registries)
        return result
    assert request.output is not None
    if output_exists(request.output) and not plan.changed:
        result.unchanged = True
        return result
    with _locked(request.output):
        from archiver.engine.transfer import transfer

        shared = share_out(plan.fetch, request.jobs) if request.fmt == "bundle" else []
        if len(shared) < 2:
            result.transfer = transfer(_bundle_request(request, plan), reporter(), registries)
            return result

        def one(items: list[Wanted], spool: Place) -> TransferRequest:
            return _spool_request(request, items, spool, len(shared))

        with spooled(shared, one, request.output, registries, on_event) as spools:
            writing = _bundle_request(request, plan, spools)
            result.transfer = transfer(writing, reporter(), registries)
    return result


def _apply_settings(lists: list[SyncList], registries: Registries) -> None:
    """TLS and credentials the lists give per registry."""
    for found in lists:
        for settings in found.registries:
            host = Reference.parse(f"{settings.host}/x").registry
            if settings.cert_dir is not None:
                raise InputError(
                    f"{settings.where}.cert-dir: not supported: put the registry's CA in "
                    f"/etc/docker/certs.d/{host}/ (or a folder named by ARCHIVER_CERTS_D)"
                )
            if settings.tls_verify is False:
                registries.allow_insecure([host])
            given = settings.credentials
            if given is None:
                continue
            user = (
                given.username
                if given.username_env is None
                else _env(given.username_env, settings.where)
            )
            password = (
                given.password
                if given.password_env is None
                else _env(given.password_env, settings.where)
            )
            registries.use_credentials(host, Credentials(user or "", password or ""))


def _env(name: str, where: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise InputError(f"{where}: credentials: the environment variable {name} is not set")
    return value


def _targets(wanted: list[Wanted], to: str) -> dict[str, Reference]:
    """Where each image goes under ``to``, as ``push --to`` names it."""
    from archiver.engine.push import destinations

    out: dict[str, Reference] = {}
    for item in wanted:
        [place], _ = destinations([item.entry()], to, None)
        [tag] = place.tags[item.entry().descriptor.digest]
        ref = Reference(place.registry, place.repository)
        out[item.name] = ref.with_tag(tag) if ":" not in tag else ref.with_digest(item.ref.digest)
    return out


@contextlib.contextmanager
def _locked(output: str) -> Iterator[None]:
    if os.path.isfile(output):
        with locked(output):
            yield
    else:
        yield


def _registry_places(items: list[Wanted], keep_going: bool) -> list[Place]:
    """One place per registry (or per image with ``keep_going``, to go on past one)."""
    if keep_going:
        return [Place.registry((item.source,)) for item in items]
    by_registry: dict[str, list[str]] = {}
    for item in items:
        by_registry.setdefault(item.ref.registry, []).append(item.source)
    return [Place.registry(tuple(names)) for names in by_registry.values()]


def _bundle_request(
    request: SyncRequest, plan: Plan, spools: list[Place] | None = None
) -> TransferRequest:
    """OUT written from the earlier OUT and the registries (or ``spools`` fetched from
    them already, their images under the names they are written with)."""
    from archiver.engine.transfer import TransferRequest

    assert request.output is not None
    # images that are not there were left out by the plan (--keep-going); the transfer
    # itself goes on past nothing (its --keep-going would read every frame of OUT first)
    fetch = spools if spools is not None else _registry_places(plan.fetch, False)
    names: tuple[str, ...] = ()
    inputs = fetch
    if output_exists(request.output) or spools is not None:
        inputs = [Place(request.output), *fetch] if output_exists(request.output) else fetch
        # fetched images are found in their registry by the name they are fetched by,
        # kept ones in OUT (and spooled ones) by the name they are written under
        names = (
            tuple(item.name if spools is not None else item.source for item in plan.fetch)
            + tuple(item.name for item in plan.kept)
            + tuple(plan.held_back)
        )
    return TransferRequest(
        inputs,
        Place(request.output),
        request.fmt,
        images=names,
        platforms=request.platforms,
        zstd=request.zstd,
        prefer="last",
        base=request.base,
        split=request.split,
        reuse_frames=True,
        extras=request.extras,
        per_image=per_image(plan.fetch + plan.kept, request.platforms_given),
    )


def _spool_request(
    request: SyncRequest, items: list[Wanted], spool: Place, spools: int
) -> TransferRequest:
    """``items`` fetched into ``spool``, less the layers the earlier OUT holds (a delta
    against it: OUT's transfer takes those from OUT)."""
    from archiver.engine.transfer import TransferRequest

    assert request.output is not None
    return TransferRequest(
        _registry_places(items, False),
        spool,
        "bundle",
        platforms=request.platforms,
        zstd=threads_each(request.zstd, spools),
        base=Place(request.output) if output_exists(request.output) else None,
        extras=request.extras,
        per_image=per_image(items, request.platforms_given),
    )


def _mirror(
    request: SyncRequest, plan: Plan, reporter: Reporter, registries: Registries
) -> TransferResult:
    """One push per set of platforms the images keep (a push keeps one set)."""
    from archiver.engine.transfer import PushOptions, TransferRequest, TransferResult, transfer

    groups: dict[tuple[str, ...] | None, list[Wanted]] = {}
    for item in plan.fetch:
        groups.setdefault(_platform_key(item, request), []).append(item)
    total = TransferResult(per_image=[] if request.keep_going else None)
    for key, items in groups.items():
        wanted = TransferRequest(
            _registry_places(items, request.keep_going),
            Place.registry(),
            REGISTRY,
            platforms=None if key is None else [Platform.parse(p) for p in key],
            keep_going=request.keep_going,
            # a mirror holds the images as they are: compressing a plain layer on the way
            # would give it another digest (and the next run would find it "updated")
            push=PushOptions(request.to, None, request.jobs, compress="none"),
            extras=request.extras,
            per_image=replace(per_image(items, request.platforms_given), platforms={}),
        )
        done = transfer(wanted, reporter, registries)
        total.skipped_inputs += done.skipped_inputs
        total.pushed = done.pushed
        if total.per_image is not None:
            total.per_image += done.per_image or []
    return total


def _platform_key(item: Wanted, request: SyncRequest) -> tuple[str, ...] | None:
    named = item_platforms(item, request.platforms_given)
    if named or request.platforms is None:
        return named or None
    return tuple(str(p) for p in request.platforms)


def _sizes(items: list[Wanted], registries: Registries, request: SyncRequest) -> dict[str, int]:
    """Bytes each image would bring (its documents and layers, each once)."""
    from archiver.engine.graph import resolve
    from archiver.engine.opening import open_place

    sizes: dict[str, int] = {}
    each, platforms = per_image(items, request.platforms_given), request.platforms
    for place in _registry_places(items, False):
        with open_place(place, registries=registries) as source:
            for entry in source.images():
                root = resolve(source, entry, each.platforms_of(entry, platforms))
                size = sum({d.digest: d.size for d, _ in root.blobs()}.values())
                for item in items:
                    if item.ref in entry.refs or item.ref.digest == entry.descriptor.digest:
                        sizes[item.name] = size
    return sizes
