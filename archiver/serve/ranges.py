"""The ``Range`` header of a blob request: one byte range (RFC 9110), checked against the
blob's size. Several ranges in one request are refused as unsatisfiable (registry clients
resume with one)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ONE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeError(ValueError):
    """A Range header that cannot be answered (416)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int
    """Inclusive, as in Content-Range."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range asked for, None for the whole blob; RangeError when it is malformed or
    outside the blob."""
    if header is None:
        return None
    text = header.strip().replace(" ", "")
    match = _ONE.fullmatch(text)
    if match is None:
        raise RangeError(f"malformed or multiple ranges {header!r}: one bytes=START-END")
    first, last = match.groups()
    if not first and not last:
        raise RangeError(f"malformed range {header!r}")
    if not first:  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise RangeError(f"range {header!r} is empty")
        return ByteRange(max(0, size - count), size - 1)
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        raise RangeError(f"range {header!r} ends before it starts")
    if start >= size:
        raise RangeError(f"range {header!r} starts at or after the end of the {size}-byte blob")
    return ByteRange(start, end)
