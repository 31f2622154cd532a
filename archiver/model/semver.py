"""Semantic versions and the ranges npm and Masterminds/semver (skopeo's) write.

A tag is a version when it reads as ``[v]MAJOR[.MINOR[.PATCH]][-PRE][+BUILD]`` (missing
parts are 0, as Masterminds reads tags). A range is comparator sets joined by ``||``; in
a set, comparators are separated by spaces or commas and all must hold. Comparators:
``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``~`` (``~>``), ``^``, x-ranges (``1.2.x``,
``1.*``, ``*``, and partial versions: ``1.2`` is ``1.2.x``) and hyphen ranges
(``1.2 - 1.4.5``). A pre-release version matches only a set that names a pre-release.

Written here rather than taken from a library: the Python semver packages read the
Python (PEP 440) or the strict semver grammar, not npm's range language with partial
versions that skopeo's ``images-by-semver`` accepts; it is small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archiver.errors import InputError

_VERSION = re.compile(
    r"v?(0|[1-9]\d*|\d+)(?:\.(\d+))?(?:\.(\d+))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
)
_PART = r"(?:\d+|[xX*])"
_PARTIAL = re.compile(
    rf"[=v]*\s*({_PART})(?:\.({_PART}))?(?:\.({_PART}))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
)
_COMPARATOR = re.compile(r"(!=|>=|=>|<=|=<|~>|[<>=~^])?\s*(\S+)", re.ASCII)
_MAX_RANGE = 1000


@dataclass(frozen=True, order=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """The version a tag names, or None when it names none."""
        found = _VERSION.fullmatch(text)
        if found is None:
            return None
        major, minor, patch, pre = found.groups()
        return cls(
            int(major), int(minor or 0), int(patch or 0), tuple(pre.split(".")) if pre else ()
        )

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        """Sorts as semver orders versions (a pre-release before its release)."""
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)


@dataclass(frozen=True)
class _Bound:
    op: str  # one of < <= > >= = !=
    version: Version
    named: Version | None = None
    """The version as written, with its pre-release (for the pre-release rule)."""

    def holds(self, version: Version) -> bool:
        a, b = version.key(), self.version.key()
        return {
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
            "=": a == b,
            "!=": a != b,
        }[self.op]


@dataclass(frozen=True)
class Range:
    """A parsed range; ``matches`` says whether a version is in it."""

    text: str
    sets: tuple[tuple[tuple[_Bound, ...], ...], ...]
    """Each set: alternatives of bounds (``!=1.2`` is two alternatives), all must hold."""

    @classmethod
    def parse(cls, text: str) -> Range:
        if not text.strip() or len(text) > _MAX_RANGE:
            raise InputError(f"semver range {text!r} does not parse: empty or too long")
        sets = []
        for alternative in text.split("||"):
            sets.append(_parse_set(alternative.strip(), text))
        return cls(text, tuple(sets))

    def matches(self, version: Version) -> bool:
        return any(_set_holds(groups, version) for groups in self.sets)


def _set_holds(groups: tuple[tuple[_Bound, ...], ...], version: Version) -> bool:
    if version.pre and not any(b.named is not None and b.named.pre for g in groups for b in g):
        return False
    return all(any(bound.holds(version) for bound in group) for group in groups)


def _parse_set(text: str, whole: str) -> tuple[tuple[_Bound, ...], ...]:
    text = re.sub(r"(!=|>=|=>|<=|=<|~>|[<>=~^])\s+", r"\1", text)  # ">= 1.2" is ">=1.2"
    hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text)
    if hyphen:
        low, high = _partial(hyphen.group(1), whole), _partial(hyphen.group(2), whole)
        return tuple(_between(low, high, whole))
    groups: list[tuple[_Bound, ...]] = []
    words = [w for w in re.split(r"[\s,]+", text) if w]
    if not words:
        raise InputError(f"semver range {whole!r} does not parse: an empty set around '||'")
    for word in words:
        found = _COMPARATOR.fullmatch(word)
        if found is None:
            raise InputError(f"semver range {whole!r} does not parse at {word!r}")
        groups += _comparator(found.group(1) or "=", _partial(found.group(2), whole), whole)
    return tuple(groups)


_Partial = tuple[int | None, int | None, int | None, tuple[str, ...]]


def _partial(text: str, whole: str) -> _Partial:
    found = _PARTIAL.fullmatch(text)
    if found is None:
        raise InputError(f"semver range {whole!r} does not parse at {text!r}")
    parts: list[int | None] = []
    for part in found.groups()[:3]:
        parts.append(None if part is None or part in "xX*" else int(part))
    for i in range(1, 3):  # after a wildcard, everything is a wildcard
        if parts[i - 1] is None:
            parts[i] = None
    pre = found.group(4)
    return parts[0], parts[1], parts[2], tuple(pre.split(".")) if pre else ()


def _v(major: int, minor: int = 0, patch: int = 0, pre: tuple[str, ...] = ()) -> Version:
    return Version(major, minor, patch, pre)


def _lowest(p: _Partial) -> Version:
    return _v(p[0] or 0, p[1] or 0, p[2] or 0, p[3])


def _next_up(p: _Partial) -> Version | None:
    """The first version past the partial ``p`` (``1.2`` -> ``1.3.0``); None: no end."""
    major, minor, patch, _ = p
    if major is None:
        return None
    if minor is None:
        return _v(major + 1, 0, 0, ("0",))
    if patch is None:
        return _v(major, minor + 1, 0, ("0",))
    return None


def _one(op: str, version: Version, named: Version) -> tuple[_Bound, ...]:
    return (_Bound(op, version, named),)


def _comparator(op: str, p: _Partial, whole: str) -> list[tuple[_Bound, ...]]:
    low, up, named = _lowest(p), _next_up(p), _lowest(p)
    exact = p[2] is not None
    if op == "=":
        if exact:
            return [_one("=", low, named)]
        return _between(p, p, whole)
    if op == "!=":
        if exact:
            return [_one("!=", low, named)]
        if up is None:
            return [(_Bound("<", _v(0, 0, 0, ("0",)), named),)]  # != * : nothing
        return [(_Bound("<", low, named), _Bound(">=", up, named))]
    if op == ">":
        return [_one(">", low, named)] if exact else ([_one(">=", up, named)] if up else [_none()])
    if op == ">=":
        return [_one(">=", low, named)]
    if op == "<":
        return [_one("<", low, named)] if p[0] is not None else [_none()]
    if op == "<=":
        if exact:
            return [_one("<=", low, named)]
        return [_one("<", up, named)] if up else []
    if op in ("~", "~>"):
        if p[0] is None:
            return []
        end = _v(p[0] + 1, 0, 0, ("0",)) if p[1] is None else _v(p[0], p[1] + 1, 0, ("0",))
        return [_one(">=", low, named), _one("<", end, named)]
    # ^: the left-most non-zero part stays
    major, minor, patch, _ = p
    if major is None:
        return []
    if major > 0 or minor is None:
        end = _v(major + 1, 0, 0, ("0",))
    elif minor > 0 or patch is None:
        end = _v(0, minor + 1, 0, ("0",))
    else:
        end = _v(0, 0, patch + 1, ("0",))
    return [_one(">=", low, named), _one("<", end, named)]


def _none() -> tuple[_Bound, ...]:
    return (_Bound("<", _v(0, 0, 0, ("0",))),)


def _between(low: _Partial, high: _Partial, whole: str) -> list[tuple[_Bound, ...]]:
    bounds: list[tuple[_Bound, ...]] = []
    if low[0] is not None:
        bounds.append(_one(">=", _lowest(low), _lowest(low)))
    if high[0] is not None:
        if high[2] is not None:
            bounds.append(_one("<=", _lowest(high), _lowest(high)))
        else:
            up = _next_up(high)
            if up is not None:
                bounds.append(_one("<", up, _lowest(high)))
    return bounds
