"""Work split to run at once: items grouped by what they share, groups balanced into a
few bins, bins run each on a thread of its own (loads and saves of a daemon)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence

MOST_AT_ONCE = 3
"""Loads (or saves) a daemon is sent at once: it registers (or writes out) the layers of
one after the other, of several at once (bench/ measures what that gains)."""


def connected(keys: Sequence[Sequence[Hashable]]) -> list[list[int]]:
    """The indexes of ``keys`` grouped: two sharing a key, directly or through others, are
    in one group."""
    group = list(range(len(keys)))

    def find(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    first: dict[Hashable, int] = {}
    for i, own in enumerate(keys):
        for key in own:
            group[find(i)] = find(first.setdefault(key, i))
    members: dict[int, list[int]] = {}
    for i in range(len(keys)):
        members.setdefault(find(i), []).append(i)
    return list(members.values())


def balanced(
    groups: list[list[int]], weight: Callable[[list[int]], int], most: int
) -> list[list[int]]:
    """Groups (of indexes) into up to ``most`` bins, the heaviest first, each into the
    lightest bin so far; bins in the order of their first index, indexes in order."""
    bins: list[list[int]] = [[] for _ in range(min(most, len(groups)))]
    loads = [0] * len(bins)
    for indexes in sorted(groups, key=weight, reverse=True):
        lightest = loads.index(min(loads))
        bins[lightest] += indexes
        loads[lightest] += weight(indexes)
    return [sorted(b) for b in sorted(bins, key=min) if b]


def on_threads(name: str, count: int, run: Callable[[int], None]) -> None:
    """``run(0)`` ... ``run(count - 1)`` at once, each on a thread of its own; back when all
    are (a thread that outlives an interrupted caller does not hold the process up)."""
    threads = [
        threading.Thread(target=run, args=(i,), name=f"{name}-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
