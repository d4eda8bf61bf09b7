"""Name every CQL statement the pipeline runs, so strategies and the writer share one registry.

Strategies emit ``Mutation(statement=NAME, params=..., timestamp=...)``; the writer prepares
each statement here once (``session.prepare(STATEMENTS[name].cql)``) and binds
``bind_values(mutation)``. Keeping the CQL, its bind order and each table's primary key in one
module means a strategy cannot name a column the writer does not bind, and the partition a
mutation is batched under is computed from the same key definition as the CQL.

Timestamp convention: every write carries ``USING TIMESTAMP ?`` and ``Mutation.params`` NEVER
include it. ``bind_values`` places it: CQL puts the marker after ``VALUES (...)`` in an INSERT
(the timestamp is the LAST bind value) and right after the table name in a DELETE (the FIRST
bind value). Only INSERT and DELETE are used for writes (no UPDATE, no counters), so those are
the only two shapes. Everything is parameterised: no value is ever formatted into CQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from feedline.errors import AdaptError

Kind = Literal["insert", "delete", "select"]


@dataclass(frozen=True)
class Table:
    """One read-model table's primary key and regular columns (mirrors 0001_init.cql)."""

    name: str
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...] = ()
    regular: tuple[str, ...] = ()

    @property
    def primary_key(self) -> tuple[str, ...]:
        return self.partition_key + self.clustering

    @property
    def columns(self) -> tuple[str, ...]:
        return self.primary_key + self.regular


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "users_by_id",
            ("user_id",),
            (),
            ("handle", "follower_count", "following_count", "shard_count", "created_at"),
        ),
        Table(
            "shards_by_id",
            ("shard_id",),
            (),
            ("author_id", "body", "like_count", "comment_count", "created_at"),
        ),
        Table("shards_by_author", ("author_id",), ("created_at", "shard_id")),
        Table("feed_by_user", ("user_id",), ("created_at", "shard_id"), ("author_id",)),
        Table(
            "comments_by_shard",
            ("shard_id",),
            ("created_at", "comment_id"),
            ("author_id", "body"),
        ),
        Table("likes_by_shard", ("shard_id",), ("user_id",), ("created_at",)),
        Table("followers_by_user", ("user_id",), ("follower_id",), ("created_at", "edge_lsn")),
        Table("following_by_user", ("user_id",), ("followee_id",), ("created_at", "edge_lsn")),
    )
}


@dataclass(frozen=True)
class Statement:
    """One named CQL statement and the names of its bind values, in bind order.

    For writes ``binds`` excludes the timestamp (see the module docstring); for reads it is
    every ``?`` in order.
    """

    name: str
    kind: Kind
    table: str
    binds: tuple[str, ...]
    cql: str

    @property
    def is_write(self) -> bool:
        return self.kind != "select"

    def bind_values(self, params: Sequence[Any], timestamp: int | None = None) -> tuple[Any, ...]:
        """Return the full positional bind tuple, the write timestamp where the CQL wants it."""
        if len(params) != len(self.binds):
            raise AdaptError(
                f"{self.name} binds {self.binds}, got {len(params)} values: {tuple(params)!r}"
            )
        if self.kind == "select":
            return tuple(params)
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise AdaptError(f"{self.name} needs an integer write timestamp, got {timestamp!r}")
        if self.kind == "insert":
            return (*params, timestamp)
        return (timestamp, *params)

    def partition(self, params: Sequence[Any]) -> tuple[Any, ...]:
        """Return ``(table, partition key values...)`` of a write with these params."""
        values = dict(zip(self.binds, params, strict=True))
        return (self.table, *(values[c] for c in TABLES[self.table].partition_key))


def _insert(name: str, table: str, columns: Sequence[str] | None = None) -> Statement:
    """Build an upsert of ``columns`` (default: all); the timestamp is the last bind value."""
    cols = tuple(columns) if columns is not None else TABLES[table].columns
    missing = set(TABLES[table].primary_key) - set(cols)
    assert not missing, f"{name}: an INSERT must bind the whole primary key, missing {missing}"
    # Identifiers come from TABLES above, never from data; values are always ``?`` binds.
    cql = (
        f"INSERT INTO {table} ({', '.join(cols)}) "  # noqa: S608
        f"VALUES ({', '.join('?' for _ in cols)}) USING TIMESTAMP ?"
    )
    return Statement(name, "insert", table, cols, cql)


def _delete(name: str, table: str) -> Statement:
    """Build a delete of one whole row; the timestamp is the first bind value."""
    key = TABLES[table].primary_key
    where = " AND ".join(f"{c} = ?" for c in key)
    cql = f"DELETE FROM {table} USING TIMESTAMP ? WHERE {where}"  # noqa: S608 (identifiers only)
    return Statement(name, "delete", table, key, cql)


def _select(name: str, table: str, binds: Sequence[str], cql: str) -> Statement:
    assert cql.count("?") == len(binds), f"{name}: binds do not match the markers"
    return Statement(name, "select", table, tuple(binds), cql)


UPSERT_USER = "upsert_user"
DELETE_USER = "delete_user"
UPSERT_SHARD = "upsert_shard"
UPDATE_SHARD = "update_shard"
DELETE_SHARD = "delete_shard"
INSERT_AUTHOR_SHARD = "insert_author_shard"
DELETE_AUTHOR_SHARD = "delete_author_shard"
INSERT_FEED_ITEM = "insert_feed_item"
DELETE_FEED_ITEM = "delete_feed_item"
UPSERT_FOLLOWER = "upsert_follower"
DELETE_FOLLOWER = "delete_follower"
UPSERT_FOLLOWING = "upsert_following"
DELETE_FOLLOWING = "delete_following"
UPSERT_COMMENT = "upsert_comment"
DELETE_COMMENT = "delete_comment"
UPSERT_LIKE = "upsert_like"
DELETE_LIKE = "delete_like"

SELECT_FOLLOWERS = "select_followers"
SELECT_LATEST_AUTHOR_SHARDS = "select_latest_author_shards"
SELECT_AUTHOR_SHARDS = "select_author_shards"
SELECT_FEED_ITEMS_BY_AUTHOR = "select_feed_items_by_author"
SELECT_EDGE = "select_edge"
SELECT_SHARD_EXISTS = "select_shard_exists"

_ALL: tuple[Statement, ...] = (
    _insert(UPSERT_USER, "users_by_id"),
    _delete(DELETE_USER, "users_by_id"),
    _insert(UPSERT_SHARD, "shards_by_id"),
    # An update carries only what a shard update can change; author and created_at never do.
    _insert(UPDATE_SHARD, "shards_by_id", ("shard_id", "body", "like_count", "comment_count")),
    _delete(DELETE_SHARD, "shards_by_id"),
    _insert(INSERT_AUTHOR_SHARD, "shards_by_author"),
    _delete(DELETE_AUTHOR_SHARD, "shards_by_author"),
    _insert(INSERT_FEED_ITEM, "feed_by_user"),
    _delete(DELETE_FEED_ITEM, "feed_by_user"),
    _insert(UPSERT_FOLLOWER, "followers_by_user"),
    _delete(DELETE_FOLLOWER, "followers_by_user"),
    _insert(UPSERT_FOLLOWING, "following_by_user"),
    _delete(DELETE_FOLLOWING, "following_by_user"),
    _insert(UPSERT_COMMENT, "comments_by_shard"),
    _delete(DELETE_COMMENT, "comments_by_shard"),
    _insert(UPSERT_LIKE, "likes_by_shard"),
    _delete(DELETE_LIKE, "likes_by_shard"),
    # FanOutShard, PurgeShard: every follower of an author and the LSN of that edge (paged).
    _select(
        SELECT_FOLLOWERS,
        "followers_by_user",
        ("user_id",),
        "SELECT follower_id, edge_lsn FROM followers_by_user WHERE user_id = ?",
    ),
    # Backfill: an author's latest N shards, newest first (N = pipeline.backfill_limit).
    _select(
        SELECT_LATEST_AUTHOR_SHARDS,
        "shards_by_author",
        ("author_id", "limit"),
        "SELECT created_at, shard_id FROM shards_by_author WHERE author_id = ? LIMIT ?",
    ),
    # Every live shard of an author (paged); see docs/events.md on what Unbackfill reads.
    _select(
        SELECT_AUTHOR_SHARDS,
        "shards_by_author",
        ("author_id",),
        "SELECT created_at, shard_id FROM shards_by_author WHERE author_id = ?",
    ),
    # Unbackfill: the followee's items actually present in one follower's feed. Filtering
    # inside one partition is bounded by that partition, never a cluster scan.
    _select(
        SELECT_FEED_ITEMS_BY_AUTHOR,
        "feed_by_user",
        ("user_id", "author_id"),
        "SELECT created_at, shard_id FROM feed_by_user WHERE user_id = ? AND author_id = ? "
        "ALLOW FILTERING",
    ),
    # Re-validation after a feed write: is the follower -> followee edge still there?
    _select(
        SELECT_EDGE,
        "following_by_user",
        ("user_id", "followee_id"),
        "SELECT edge_lsn FROM following_by_user WHERE user_id = ? AND followee_id = ?",
    ),
    # Re-validation after a feed write: does the shard still exist?
    _select(
        SELECT_SHARD_EXISTS,
        "shards_by_id",
        ("shard_id",),
        "SELECT shard_id FROM shards_by_id WHERE shard_id = ?",
    ),
)

STATEMENTS: dict[str, Statement] = {s.name: s for s in _ALL}


def get(name: str) -> Statement:
    """Return the statement called ``name``; an unknown name is a programming error."""
    try:
        return STATEMENTS[name]
    except KeyError:
        raise AdaptError(f"no CQL statement named {name!r}") from None


def bind_values(mutation: Any) -> tuple[Any, ...]:
    """Return the positional binds of a ``Mutation`` (its params plus its timestamp)."""
    return get(mutation.statement).bind_values(mutation.params, mutation.timestamp)
