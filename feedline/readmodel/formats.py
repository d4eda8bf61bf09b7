"""Define the read model's formats: cache entries, list windows, cursors' lists, object JSON.

One definition for everyone who reads or checks the read model: the web serves pages and
objects in these formats, and ``feedline verify`` decodes cached entries and builds the
JSON it expects with the very same functions, so the two cannot drift apart. Pure data and
functions (no I/O, no metrics), so importing them costs nothing.

A cache entry is bytes with a one-byte kind: ``V`` + payload (a cached value), ``N`` (a
negative entry: "no such id") or ``L`` + token (a lease: a reader is loading the key). A
list's value is a *window*: a completeness flag (``C``/``P``) and its first rows, packed
as signed 64-bit ints (``ListSpec.packed``) or, for rows holding text, as JSON.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from feedline import cache_keys
from feedline.statements import TABLES

VALUE, NEGATIVE, LEASE = b"V", b"N", b"L"
EPOCH = datetime(1970, 1, 1)
MS = timedelta(milliseconds=1)
COMPLETE, PARTIAL = b"C", b"P"


def to_ms(dt: datetime) -> int:
    """Return a driver timestamp (naive UTC) as epoch milliseconds."""
    return (dt.replace(tzinfo=None) - EPOCH) // MS


def from_ms(ms: int) -> datetime:
    """Return epoch milliseconds as a naive UTC datetime (what the driver binds)."""
    return EPOCH + ms * MS


def iso(ms: int) -> str:
    """Return epoch milliseconds as the API's ISO 8601 time (UTC, milliseconds)."""
    return from_ms(ms).isoformat(timespec="milliseconds") + "+00:00"


def dumps(doc: Any) -> bytes:
    """Return compact UTF-8 JSON, as the cache holds it and the API sends it."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Window:
    """The first positions of a list (rows of ints, or JSON rows) and whether that is all."""

    rows: list[tuple[Any, ...]]
    complete: bool


@dataclass(frozen=True)
class ListSpec:
    """How one list is keyed, queried, ordered, cached and turned into rows.

    A list is one partition of ``table`` read in clustering order; its position (what a
    cursor holds, what a page resumes after) is the table's clustering key, the leading
    ``pos`` values of a row.
    """

    name: str  # cursor scope prefix and the read store's query name
    table: str  # the Cassandra table (feedline.statements.TABLES) it is a partition of
    columns: tuple[str, ...]  # what is read of each row, in this order
    key: Callable[[int], str]  # the cache key of an owner's window
    row: Callable[[Any], tuple[Any, ...]]  # Cassandra row -> window row
    descending: bool  # the table's clustering order
    after: Callable[[tuple[int, ...]], tuple[Any, ...]]  # position -> query binds
    packed: struct.Struct | None = None  # None: rows are JSON (they hold text)

    @cached_property  # read per window row on the hot path
    def pos(self) -> int:
        """Return how many leading values of a row are its position (the clustering key)."""
        return len(TABLES[self.table].clustering)

    def encode(self, w: Window) -> bytes:
        flag = COMPLETE if w.complete else PARTIAL
        if self.packed is None:
            return VALUE + flag + dumps(w.rows)
        return VALUE + flag + b"".join(self.packed.pack(*r) for r in w.rows)

    def decode(self, entry: bytes) -> Window:
        data = entry[2:]
        if self.packed is None:
            rows = [tuple(r) for r in json.loads(data)]
        else:
            rows = list(self.packed.iter_unpack(data))
        return Window(rows, entry[1:2] == COMPLETE)

    def beyond(self, row: tuple[Any, ...], position: tuple[int, ...]) -> bool:
        """Return True if ``row`` comes after ``position`` in this list's order."""
        here = row[: self.pos]
        return here < position if self.descending else here > position


def _time_id(ms: int, id_: int) -> tuple[Any, ...]:
    return (from_ms(ms), id_)


FEED = ListSpec(
    "feed",
    "feed_by_user",
    ("created_at", "shard_id", "author_id"),
    cache_keys.feed,
    lambda r: (to_ms(r.created_at), r.shard_id, r.author_id),
    True,
    lambda p: _time_id(*p),
    struct.Struct(">qqq"),
)
AUTHOR = ListSpec(
    "author",
    "shards_by_author",
    ("created_at", "shard_id", "author_id"),
    cache_keys.user_shards,
    lambda r: (to_ms(r.created_at), r.shard_id, r.author_id),
    True,
    lambda p: _time_id(*p),
    struct.Struct(">qqq"),
)
COMMENTS = ListSpec(
    "comments",
    "comments_by_shard",
    ("created_at", "comment_id", "author_id", "body"),
    cache_keys.comments,
    lambda r: (to_ms(r.created_at), r.comment_id, r.author_id, r.body),
    False,
    lambda p: _time_id(*p),
)
FOLLOWERS = ListSpec(
    "followers",
    "followers_by_user",
    ("follower_id", "created_at"),
    cache_keys.followers,
    lambda r: (r.follower_id, to_ms(r.created_at) if r.created_at else 0),
    False,
    lambda p: p,
    struct.Struct(">qq"),
)
FOLLOWING = ListSpec(
    "following",
    "following_by_user",
    ("followee_id", "created_at"),
    cache_keys.following,
    lambda r: (r.followee_id, to_ms(r.created_at) if r.created_at else 0),
    False,
    lambda p: p,
    struct.Struct(">qq"),
)
LISTS = (FEED, AUTHOR, COMMENTS, FOLLOWERS, FOLLOWING)

# Hydrated objects by kind: their cache key, and the table whose whole row they are (its
# first column, the partition key, is the object's id).
OBJECT_KEYS = {"shard": cache_keys.shard, "user": cache_keys.user}
OBJECT_TABLES = {"shard": "shards_by_id", "user": "users_by_id"}


def shard_json(r: Any) -> bytes | None:
    """Serialise a shards_by_id row; a row without author or time is not a whole shard yet."""
    if r.author_id is None or r.created_at is None:
        return None
    return dumps(
        {
            "id": r.shard_id,
            "author_id": r.author_id,
            "body": r.body,
            "created_at": iso(to_ms(r.created_at)),
            "like_count": r.like_count or 0,
            "comment_count": r.comment_count or 0,
        }
    )


def user_json(r: Any) -> bytes | None:
    """Serialise a users_by_id row; a row without a handle is not a whole profile yet."""
    if r.handle is None:
        return None
    return dumps(
        {
            "id": r.user_id,
            "handle": r.handle,
            "follower_count": r.follower_count or 0,
            "following_count": r.following_count or 0,
            "shard_count": r.shard_count or 0,
            "created_at": iso(to_ms(r.created_at)) if r.created_at else iso(0),
        }
    )


SERIALISE = {"shard": shard_json, "user": user_json}
