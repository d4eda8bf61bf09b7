"""Merge a reader's feed partition with the recent shards of the pull authors they follow.

Hybrid fan-out (docs/events.md, "Push and pull authors"): a pull author's new shards are
not copied into followers' feeds, so a feed page is the union of the reader's own feed
rows and, for each pull author they follow, that author's shards in the follow's backfill
window (the same window a push follow copies: ``feedline.fanout.in_window``). A feed row
can also be a pull author's (written while they were push): rows are deduplicated by
shard id. Pure functions over rows ``(created_at ms, shard id, author id)``, newest first.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

Row = tuple[Any, ...]  # (created_at ms, shard id, author id)


def window_start_ms(followed_at_ms: int | None, window_ms: int) -> int | None:
    """Return the oldest created_at (ms) a follow made at ``followed_at_ms`` shows; None:
    no bound (an edge without a known creation time holds every shard, as in fan-out)."""
    return None if followed_at_ms is None else followed_at_ms - window_ms


def within(rows: Iterable[Row], since_ms: int | None) -> list[Row]:
    """Return the leading ``rows`` (newest first) created at or after ``since_ms``."""
    out = []
    for r in rows:
        if since_ms is not None and r[0] < since_ms:
            break
        out.append(r)
    return out


def merge(sources: Iterable[Sequence[Row]], limit: int) -> tuple[list[Row], bool]:
    """Return the first ``limit`` distinct rows of ``sources``, newest first, and whether
    there are more.

    Each source is a list's rows after the same position, newest first, up to ``limit``
    + 1 of them (fewer only when the list has no more). Dropping duplicates never leaves
    fewer distinct rows than the longest source holds, so there are more rows after the
    page exactly when more than ``limit`` distinct rows came in: the page and its cursor
    are those of one list holding them all (a pure push feed).
    """
    seen: set[int] = set()
    out: list[Row] = []
    for row in heapq.merge(*sources, key=lambda r: (r[0], r[1]), reverse=True):
        if row[1] in seen:
            continue
        seen.add(row[1])
        out.append(row)
        if len(out) > limit:
            return out[:limit], True
    return out, False
