"""Content digests: ``algorithm:hex``, parsed and validated, never a bare string."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from archiver.errors import InputError

_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


@dataclass(frozen=True, order=True, slots=True)
class Digest:
    """A validated content digest such as ``sha256:9f86...``."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``algorithm:hex``; only sha256 and sha512 with lower-case hex are accepted."""
        if cls is Digest and isinstance(text, str):
            return _parsed(text)  # a bundle of many images names each digest many times
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Digest:
        if not isinstance(text, str) or not _DIGEST_RE.fullmatch(text):
            raise InputError(f"invalid digest {text!r}")
        algorithm, _, hexpart = text.partition(":")
        want = _HEX_LENGTH.get(algorithm)
        if want is None:
            raise InputError(f"unsupported digest algorithm in {text!r}")
        if len(hexpart) != want or not re.fullmatch(r"[0-9a-f]+", hexpart):
            raise InputError(f"invalid digest {text!r}: want {want} lower-case hex digits")
        return cls(algorithm, hexpart)

    @classmethod
    def from_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    @classmethod
    def is_valid(cls, text: str) -> bool:
        try:
            cls.parse(text)
        except InputError:
            return False
        return True

    def hasher(self) -> Any:
        """A fresh hashlib object for this digest's algorithm."""
        return hashlib.new(self.algorithm)

    @property
    def encoded(self) -> str:
        return self.hex

    def short(self, length: int = 12) -> str:
        """The first ``length`` hex digits, as docker shows IDs."""
        return self.hex[:length]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def __repr__(self) -> str:
        return f"Digest({str(self)!r})"


def chain_ids(diff_ids: list[str] | tuple[Digest, ...]) -> list[str]:
    """Docker's layer chain IDs: chain(1) = diff(1),
    chain(n) = sha256(chain(n-1) + " " + diff(n))."""
    chains: list[str] = []
    for diff in map(str, diff_ids):
        if chains:
            diff = "sha256:" + hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest()
        chains.append(diff)
    return chains


@lru_cache(maxsize=65536)
def _parsed(text: str) -> Digest:
    """Digests parsed lately, by their text (a Digest is immutable: shared safely)."""
    return Digest._parse(text)
