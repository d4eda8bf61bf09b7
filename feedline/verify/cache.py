"""Check cached Redis entries against PostgreSQL (the read path's cache contract).

The cache may lack anything (a miss is never a difference); what it holds must agree
with the source of truth. Entries are read and decoded with the read path's own codecs
(``feedline.readmodel.model``), so verify and the reads cannot drift apart:

- ``user(id)`` / ``shard(id)``: the hydrated JSON object; a negative entry ("no such
  id") for a user or shard that exists is stale too;
- ``feed``, ``user_shards``, ``comments``, ``followers``, ``following``: a *window*, the
  first positions of the list; it must equal the head of the expected list, and the
  whole list when it says it is complete.

Leases (a reader loading the key right now) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from feedline import cache_keys
from feedline.readmodel import model as rm
from feedline.readmodel.cache import LEASE, NEGATIVE, VALUE
from feedline.verify.model import Difference, Row
from feedline.verify.source import Expected


def _feedish(rows: list[Row]) -> list[tuple[Any, ...]]:
    out = [(rm.to_ms(r["created_at"]), r["shard_id"], r["author_id"]) for r in rows]
    return sorted(out, reverse=True)


LISTS: dict[str, tuple[rm.ListSpec, Callable[[list[Row]], list[tuple[Any, ...]]]]] = {
    "feed_by_user": (rm.FEED, _feedish),
    "shards_by_author": (rm.AUTHOR, _feedish),
    "comments_by_shard": (
        rm.COMMENTS,
        lambda rows: sorted(
            (rm.to_ms(r["created_at"]), r["comment_id"], r["author_id"], r["body"]) for r in rows
        ),
    ),
    "followers_by_user": (
        rm.FOLLOWERS,
        lambda rows: sorted((r["follower_id"], rm.to_ms(r["created_at"])) for r in rows),
    ),
    "following_by_user": (
        rm.FOLLOWING,
        lambda rows: sorted((r["followee_id"], rm.to_ms(r["created_at"])) for r in rows),
    ),
}


def _user_doc(r: Row) -> dict[str, Any]:
    return {"id": r["user_id"], "handle": r["handle"], "follower_count": r["follower_count"],
            "following_count": r["following_count"], "shard_count": r["shard_count"],
            "created_at": rm.iso(rm.to_ms(r["created_at"]))}  # fmt: skip


def _shard_doc(r: Row) -> dict[str, Any]:
    return {"id": r["shard_id"], "author_id": r["author_id"], "body": r["body"],
            "created_at": rm.iso(rm.to_ms(r["created_at"])), "like_count": r["like_count"],
            "comment_count": r["comment_count"]}  # fmt: skip


OBJECTS = {
    "users_by_id": (cache_keys.user, _user_doc),
    "shards_by_id": (cache_keys.shard, _shard_doc),
}


def check_user(client: Any, expected: Expected) -> tuple[int, list[Difference]]:
    """Return how many cache entries of ``expected``'s partitions were checked, and diffs."""
    wanted: list[tuple[str, int, str]] = []
    for table, key in expected.partitions:
        if table in LISTS:
            wanted.append((table, key, LISTS[table][0].key(key)))
        elif table in OBJECTS:
            wanted.append((table, key, OBJECTS[table][0](key)))
    if not wanted:
        return 0, []
    entries = client.mget([k for _, _, k in wanted])
    checked, found = 0, []
    for (table, key, redis_key), entry in zip(wanted, entries, strict=True):
        if entry is None or entry[:1] == LEASE:
            continue
        checked += 1
        rows = expected.partitions[(table, key)]
        problem = _object(table, rows, entry) if table in OBJECTS else _window(table, rows, entry)
        if problem is not None:
            exp, act = problem
            found.append(Difference("stale", f"redis {redis_key}", key, table, exp, act))
    return checked, found


def _object(table: str, rows: list[Row], entry: bytes) -> tuple[Any, Any] | None:
    if entry[:1] == NEGATIVE:
        return ("exists",), ("negative entry",)
    if entry[:1] != VALUE:
        return None
    want = OBJECTS[table][1](rows[0])
    got = json.loads(entry[1:])
    return None if got == want else ((json.dumps(want),), (json.dumps(got),))


def _window(table: str, rows: list[Row], entry: bytes) -> tuple[Any, Any] | None:
    if entry[:1] != VALUE:
        return None
    spec, expect = LISTS[table]
    window = spec.decode(entry)
    want = expect(rows)
    got = [tuple(r) for r in window.rows]
    head = want if window.complete else want[: len(got)]
    if got == head and (window.complete or len(got) <= len(want)):
        return None
    return (f"{len(want)} items, head {head[:3]}",), (f"{len(got)} cached, head {got[:3]}",)
