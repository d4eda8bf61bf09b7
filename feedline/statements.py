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
    """One read-model table's primary key and regular columns (mirrors the migrations).

    ``colocated`` names another table with the same partition key whose writes go in the
    same UNLOGGED batch: Cassandra applies one batch's updates of one partition key in one
    keyspace as a single mutation (one commit-log entry per replica), whatever the table.
    """

    name: str
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...] = ()
    regular: tuple[str, ...] = ()
    colocated: str | None = None

    @property
    def group(self) -> str:
        """Return the name mutations of this table are batched under."""
        return self.colocated or self.name

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
        # The rows a follow put in a feed, by author (0002_feed_by_user_author.cql): what an
        # unfollow or a shard delete removes, found without scanning the feed.
        Table(
            "feed_by_user_author",
            ("user_id",),
            ("author_id", "created_at", "shard_id"),
            colocated="feed_by_user",
        ),
        Table(
            "comments_by_shard",
            ("shard_id",),
            ("created_at", "comment_id"),
            ("author_id", "body"),
        ),
        Table("likes_by_shard", ("shard_id",), ("user_id",), ("created_at",)),
        Table("followers_by_user", ("user_id",), ("follower_id",), ("created_at", "edge_lsn")),
        Table("following_by_user", ("user_id",), ("followee_id",), ("created_at", "edge_lsn")),
        # Hybrid fan-out (0003_pull_authors.cql, docs/events.md "Push and pull authors"): an
        # author's mode decision, and the pull authors each reader follows (a superset).
        Table("author_mode", ("author_id",), (), ("target", "target_lsn", "settled_lsn")),
        Table("pull_following_by_user", ("user_id",), ("author_id",)),
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
    # A slice delete's trailing binds: the clustering columns bounded from above,
    # ``(c1, c2) <= (?, ?)``, under the equality prefix of the binds before them.
    below: tuple[str, ...] = ()

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
        """Return ``(table, partition key values...)`` of a write with these params.

        ``table`` is the batching group (see ``Table.colocated``): a feed row and its
        index row share ``("feed_by_user", user_id)`` and go out in one batch.
        """
        values = dict(zip(self.binds, params, strict=True))
        table = TABLES[self.table]
        return (table.group, *(values[c] for c in table.partition_key))


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


def _delete(name: str, table: str, key: Sequence[str] | None = None) -> Statement:
    """Build a delete of one whole row, or of every row under a primary-key prefix.

    A prefix (the partition key plus leading clustering columns) writes one range
    tombstone instead of one tombstone per row. The timestamp is the first bind value.
    """
    full = TABLES[table].primary_key
    key = tuple(key) if key is not None else full
    assert key == full[: len(key)] and len(key) >= len(TABLES[table].partition_key), (
        f"{name}: a delete must bind a primary-key prefix holding the partition key"
    )
    where = " AND ".join(f"{c} = ?" for c in key)
    cql = f"DELETE FROM {table} USING TIMESTAMP ? WHERE {where}"  # noqa: S608 (identifiers only)
    return Statement(name, "delete", table, key, cql)


def _delete_below(name: str, table: str, prefix: Sequence[str], below: Sequence[str]) -> Statement:
    """Build a delete of every row under ``prefix`` at or below a clustering position.

    One range tombstone (a multi-column slice, ``(c1, c2) <= (?, ?)``) covers the whole
    tail, however many rows it holds: a feed trim (issue 16). The timestamp is first.
    """
    full = TABLES[table].primary_key
    key = (*prefix, *below)
    assert key == full[: len(key)] and len(prefix) >= len(TABLES[table].partition_key), (
        f"{name}: a slice delete bounds the clustering columns after a key prefix"
    )
    where = " AND ".join(f"{c} = ?" for c in prefix)
    bound = f"({', '.join(below)}) <= ({', '.join('?' for _ in below)})"
    cql = f"DELETE FROM {table} USING TIMESTAMP ? WHERE {where} AND {bound}"  # noqa: S608
    return Statement(name, "delete", table, key, cql, tuple(below))


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
INSERT_FEED_INDEX = "insert_feed_index"
DELETE_FEED_INDEX = "delete_feed_index"
DELETE_FEED_INDEX_AUTHOR = "delete_feed_index_author"
DELETE_FEED_BELOW = "delete_feed_below"
DELETE_FEED_INDEX_BELOW = "delete_feed_index_below"
UPSERT_FOLLOWER = "upsert_follower"
DELETE_FOLLOWER = "delete_follower"
UPSERT_FOLLOWING = "upsert_following"
DELETE_FOLLOWING = "delete_following"
UPSERT_COMMENT = "upsert_comment"
DELETE_COMMENT = "delete_comment"
UPSERT_LIKE = "upsert_like"
DELETE_LIKE = "delete_like"
DECIDE_AUTHOR_MODE = "decide_author_mode"
SETTLE_AUTHOR_MODE = "settle_author_mode"
INSERT_PULL_FOLLOWING = "insert_pull_following"
DELETE_PULL_FOLLOWING = "delete_pull_following"

SELECT_FOLLOWERS_PAGE = "select_followers_page"
SELECT_FOLLOWERS_BETWEEN = "select_followers_between"
SELECT_AUTHOR_SHARDS_SINCE = "select_author_shards_since"
SELECT_AUTHOR_SHARD = "select_author_shard"
SELECT_FEED_INDEX = "select_feed_index"
SELECT_FEED_INDEX_ITEM = "select_feed_index_item"
SELECT_EDGE = "select_edge"
SELECT_AUTHOR_MODE = "select_author_mode"
SELECT_FEED_TRIM = "select_feed_trim"
SELECT_FEED_INDEX_ALL = "select_feed_index_all"

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
    # Every feed row a follow wrote has its index row, written and deleted with it, in the
    # same batch and at the same timestamp; an unfollow deletes the whole (user, author)
    # slice with one range tombstone.
    _insert(INSERT_FEED_INDEX, "feed_by_user_author"),
    _delete(DELETE_FEED_INDEX, "feed_by_user_author"),
    _delete(DELETE_FEED_INDEX_AUTHOR, "feed_by_user_author", ("user_id", "author_id")),
    # A feed trim (fanout.trim, issue 16): one range tombstone below the cap's last row,
    # and one per author of the index rows below it.
    _delete_below(DELETE_FEED_BELOW, "feed_by_user", ("user_id",), ("created_at", "shard_id")),
    _delete_below(
        DELETE_FEED_INDEX_BELOW,
        "feed_by_user_author",
        ("user_id", "author_id"),
        ("created_at", "shard_id"),
    ),
    _insert(UPSERT_FOLLOWER, "followers_by_user"),
    _delete(DELETE_FOLLOWER, "followers_by_user"),
    _insert(UPSERT_FOLLOWING, "following_by_user"),
    _delete(DELETE_FOLLOWING, "following_by_user"),
    _insert(UPSERT_COMMENT, "comments_by_shard"),
    _delete(DELETE_COMMENT, "comments_by_shard"),
    _insert(UPSERT_LIKE, "likes_by_shard"),
    _delete(DELETE_LIKE, "likes_by_shard"),
    # Hybrid fan-out: a mode decision (at its users event's LSN), its settling once the
    # sweep over the author's followers is done (same timestamp), and reader pull lists.
    _insert(DECIDE_AUTHOR_MODE, "author_mode", ("author_id", "target", "target_lsn")),
    _insert(SETTLE_AUTHOR_MODE, "author_mode", ("author_id", "settled_lsn")),
    _insert(INSERT_PULL_FOLLOWING, "pull_following_by_user"),
    _delete(DELETE_PULL_FOLLOWING, "pull_following_by_user"),
    # FanOutShard, PurgeShard: the next page of an author's followers after a clustering
    # position, when each edge was created (the backfill window) and the LSN of its newest
    # follow; a big fan-out goes a page per step (fanout.py, issue 16).
    _select(
        SELECT_FOLLOWERS_PAGE,
        "followers_by_user",
        ("user_id", "after", "limit"),
        "SELECT follower_id, created_at, edge_lsn FROM followers_by_user "
        "WHERE user_id = ? AND follower_id > ? LIMIT ?",
    ),
    # Re-validation of one page of a fan-out: the author's followers in the page's id range.
    _select(
        SELECT_FOLLOWERS_BETWEEN,
        "followers_by_user",
        ("user_id", "first", "last"),
        "SELECT follower_id, created_at, edge_lsn FROM followers_by_user "
        "WHERE user_id = ? AND follower_id >= ? AND follower_id <= ?",
    ),
    # Backfill: every shard of an author in a follow's window, newest first (paged).
    _select(
        SELECT_AUTHOR_SHARDS_SINCE,
        "shards_by_author",
        ("author_id", "created_at"),
        "SELECT created_at, shard_id FROM shards_by_author WHERE author_id = ? AND created_at >= ?",
    ),
    # Re-validation after a feed write: does the shard still exist? (shards_by_author, not
    # shards_by_id: a backfill found the shard there, and only its delete removes it.)
    _select(
        SELECT_AUTHOR_SHARD,
        "shards_by_author",
        ("author_id", "created_at", "shard_id"),
        "SELECT shard_id FROM shards_by_author "
        "WHERE author_id = ? AND created_at = ? AND shard_id = ?",
    ),
    # Unbackfill: what one follower's feed holds of one author (a clustering slice of one
    # partition: no filtering, nothing else of the feed is read).
    _select(
        SELECT_FEED_INDEX,
        "feed_by_user_author",
        ("user_id", "author_id"),
        "SELECT created_at, shard_id FROM feed_by_user_author WHERE user_id = ? AND author_id = ?",
    ),
    # PurgeShard: does this follower's feed hold the deleted shard? (a point read)
    _select(
        SELECT_FEED_INDEX_ITEM,
        "feed_by_user_author",
        ("user_id", "author_id", "created_at", "shard_id"),
        "SELECT shard_id FROM feed_by_user_author "
        "WHERE user_id = ? AND author_id = ? AND created_at = ? AND shard_id = ?",
    ),
    # Re-validation after a feed write: is the follower -> followee edge still there, and
    # when was it created (a re-follow moves the window)?
    _select(
        SELECT_EDGE,
        "following_by_user",
        ("user_id", "followee_id"),
        "SELECT created_at, edge_lsn FROM following_by_user WHERE user_id = ? AND followee_id = ?",
    ),
    # Hybrid fan-out: an author's mode decision and whether its sweep is done.
    _select(
        SELECT_AUTHOR_MODE,
        "author_mode",
        ("author_id",),
        "SELECT target, target_lsn, settled_lsn FROM author_mode WHERE author_id = ?",
    ),
    # A feed trim: the feed's live rows with their write timestamps (the trim's tombstone
    # is written at the highest), and the feed index's rows (what to trim there).
    _select(
        SELECT_FEED_TRIM,
        "feed_by_user",
        ("user_id",),
        "SELECT created_at, shard_id, WRITETIME(author_id) AS written "
        "FROM feed_by_user WHERE user_id = ?",
    ),
    _select(
        SELECT_FEED_INDEX_ALL,
        "feed_by_user_author",
        ("user_id",),
        "SELECT author_id, created_at, shard_id FROM feed_by_user_author WHERE user_id = ?",
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


def _row_positions(s: Statement) -> tuple[int, ...]:
    """The bind positions that name the row (or range) a write covers entirely."""
    if s.kind == "delete":
        return tuple(range(len(s.binds)))  # key prefix (and bounds): all of it names it
    return tuple(s.binds.index(c) for c in TABLES[s.table].primary_key)


_ROW_POSITIONS = {name: _row_positions(s) for name, s in STATEMENTS.items() if s.is_write}


def coalesce(mutations: Sequence[Any]) -> list[Any]:
    """Drop the writes that a newer write in ``mutations`` shadows; keep the order.

    Two writes by the same statement to the same row (the same key, or for a delete the
    same prefix and bounds) write the same cells, so the one with the higher timestamp
    shadows every cell of the other (Cassandra is last-write-wins per cell): only the
    newest need be sent, and the result is the same (a hot shard's counts, liked ten
    times in one writer batch, are written once). Writes of equal timestamps are all
    kept (Cassandra breaks such ties by value), and exact duplicates go.
    """
    newest: dict[tuple[Any, ...], int] = {}
    keys = []
    for m in mutations:
        positions = _ROW_POSITIONS[m.statement]
        key = (m.statement, *(m.params[i] for i in positions))
        keys.append(key)
        if m.timestamp > newest.get(key, m.timestamp - 1):
            newest[key] = m.timestamp
    seen: set[Any] = set()
    out = []
    for m, key in zip(mutations, keys, strict=True):
        if m.timestamp == newest[key] and m not in seen:
            seen.add(m)
            out.append(m)
    return out
