"""Which tags of a repository a list's filter chooses, from the tags the registry lists.

``regex`` is searched in the tag (skopeo's ``images-by-tag-regex``, as Go's MatchString);
``allow``/``deny`` must match the whole tag (regsync); ``semver`` keeps tags that read as
versions in the range. Patterns are checked when the list is read (``check``), so a bad
one stops the run before any registry is asked; a filter that keeps nothing is a warning.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archiver.errors import InputError
from archiver.model.sync_lists.spec import ImageSpec, TagFilter

if TYPE_CHECKING:
    from archiver.model.semver import Range


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InputError(f"{where}: regex {pattern!r} does not compile: {exc}") from None


def _range(text: str, where: str) -> Range:
    from archiver.model.semver import Range  # only lists with a semver filter need it

    try:
        return Range.parse(text)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def check(spec: ImageSpec) -> None:
    """Every pattern and range of ``spec`` compiles (InputError naming where, if not)."""
    chosen = spec.filter
    for pattern in [*([chosen.regex] if chosen.regex else []), *chosen.allow, *chosen.deny]:
        _compile(pattern, spec.where)
    if chosen.semver is not None:
        _range(chosen.semver, spec.where)


def choose(chosen: TagFilter, listed: list[str], where: str) -> list[str]:
    """The tags of ``listed`` that ``chosen`` keeps (its named tags are not filtered)."""
    kept = list(listed)
    if chosen.regex is not None:
        pattern = _compile(chosen.regex, where)
        kept = [t for t in kept if pattern.search(t)]
    if chosen.allow:
        allow = [_compile(p, where) for p in chosen.allow]
        kept = [t for t in kept if any(p.fullmatch(t) for p in allow)]
    if chosen.deny:
        deny = [_compile(p, where) for p in chosen.deny]
        kept = [t for t in kept if not any(p.fullmatch(t) for p in deny)]
    if chosen.semver is not None:
        from archiver.model.semver import Version

        wanted = _range(chosen.semver, where)
        kept = [t for t in kept if (v := Version.parse(t)) is not None and wanted.matches(v)]
    return sorted(set(kept) | set(chosen.tags))


def describe(chosen: TagFilter) -> str:
    """The filter in a few words, for a warning."""
    parts = [f"regex {chosen.regex!r}"] if chosen.regex else []
    parts += [f"allow {list(chosen.allow)}"] if chosen.allow else []
    parts += [f"deny {list(chosen.deny)}"] if chosen.deny else []
    parts += [f"semver {chosen.semver!r}"] if chosen.semver else []
    return ", ".join(parts) or "every tag"
