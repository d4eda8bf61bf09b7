"""The vocabulary shared by strategies, writers and cache invalidators.

A strategy is a pure function from one Debezium change event to a ``Plan``: the Cassandra
mutations to apply, the fan-out steps that need a read of the read model first, and the
Redis keys to invalidate. Keeping strategies pure (no I/O) makes every table's behaviour
testable event by event; the writer actor executes plans.

Write timestamps (``USING TIMESTAMP``) come from the source change's PostgreSQL LSN, which
orders every change in the database. Rows whose id is never reused (shards, comments) are
deleted with ``TERMINAL`` so that no late or replayed insert can bring them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from feedline.notices import Notice

# Above any LSN and any microsecond clock: a delete written with it is final.
TERMINAL = 2**62

OPS = ("c", "u", "d", "r", "t")  # create, update, delete, snapshot read, tombstone


@dataclass(frozen=True)
class ChangeEvent:
    """One decoded Debezium event (schemas off). ``op`` is ``"t"`` for a tombstone."""

    table: str
    op: str
    key: dict[str, Any]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    lsn: int
    ts_ms: int

    @property
    def row(self) -> dict[str, Any]:
        """Return the row this event is about: ``after``, or ``before`` for a delete."""
        return self.after if self.after is not None else (self.before or {})


@dataclass(frozen=True)
class Mutation:
    """One idempotent CQL write: a named prepared statement, its values and timestamp.

    ``partition`` is ``(table, partition key values...)``; the writer batches mutations of
    one partition together (UNLOGGED) and runs different partitions concurrently.
    """

    statement: str
    params: tuple[Any, ...]
    timestamp: int
    partition: tuple[Any, ...]


@dataclass(frozen=True)
class FanOutShard:
    """Insert a new shard into the feed of every follower whose window holds it.

    Writer (``feedline.fanout``): ``select_followers_page`` (author_id; a page at a time)
    -> for each follower whose edge's window holds the shard (created at or after the
    follow's created_at minus the backfill window), its feed row and index row at
    ts = edge_lsn; then re-validate.
    Invalidate ``cache_keys.feed(follower)`` for each follower written.
    """

    author_id: int
    shard_id: int
    created_at: datetime
    lsn: int


@dataclass(frozen=True)
class Backfill:
    """Copy the followee's shards in the follow's window into the follower's feed.

    The window is every shard created at or after ``created_at`` (the follow's) minus
    the backfill window (docs/events.md, "The expected feed"). Writer: the window's rows
    from ``shards_by_author`` at ts = lsn, and deletes at ts = lsn of the pair's indexed
    rows below it; then re-validate every feed row written (here and in FanOutShard): if
    the edge is gone or no longer holds the shard in its window, delete at the same ts (a
    tie: the delete wins); if the shard is gone, at TERMINAL. Without this, a delete that
    raced the read leaks a feed row (tests/unit/strategies/test_convergence.py).
    """

    follower_id: int
    followee_id: int
    lsn: int
    created_at: datetime


@dataclass(frozen=True)
class Unbackfill:
    """Remove the followee's shards from the follower's feed.

    Writer: ``select_feed_index`` (follower_id, followee_id), i.e. what IS in the feed,
    then delete each feed row and the index slice at ts = lsn. Reading shards_by_author
    instead misses a shard deleted concurrently (its PurgeShard no longer sees this
    follower either).
    """

    follower_id: int
    followee_id: int
    lsn: int


@dataclass(frozen=True)
class PurgeShard:
    """Remove a deleted shard from every feed that holds it (read followers, then index).

    Writer: ``select_followers_page`` (author_id; a page at a time) -> for each follower
    whose window holds the shard, ``select_feed_index_item``; delete the feed and index
    rows found, at TERMINAL; invalidate ``cache_keys.feed(follower)`` for each. Nothing is
    written for a feed that does not hold the shard.
    """

    author_id: int
    shard_id: int
    created_at: datetime


@dataclass(frozen=True)
class ModeCheck:
    """Decide whether an author is push or pull from their follower count (hybrid fan-out).

    Writer (``feedline.fanout.mode_check``, only with ``FEEDLINE_PULL_THRESHOLD`` > 0):
    read ``author_mode``; if the count crosses the threshold (with hysteresis), write the
    new decision at ts = lsn and sweep the author's followers a page per step (pull: add
    the author to their pull lists; push: backfill their feeds, then drop the entries),
    then mark it settled (docs/events.md, "Push and pull authors").
    """

    author_id: int
    follower_count: int
    lsn: int


Expansion = FanOutShard | Backfill | Unbackfill | PurgeShard | ModeCheck


@dataclass(frozen=True)
class Plan:
    """What one event asks for, applied in order: mutations, then expansions, then cache,
    then notices to live streams.

    Mutations come first so that every event writes its own fact before it reads the other
    side (a follow writes the edge before reading the followee's shards; a shard writes
    itself to ``shards_by_author`` before reading followers). Whichever of two concurrent
    events runs second then sees the first, so neither order loses a feed row.
    """

    mutations: tuple[Mutation, ...] = ()
    expansions: tuple[Expansion, ...] = ()
    invalidations: tuple[str, ...] = field(default=())
    # Published once the event is applied and its keys invalidated (feedline.notices).
    notices: tuple[Notice, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.mutations or self.expansions or self.invalidations or self.notices)


class Strategy(Protocol):
    """Turn one table's change events into plans."""

    table: str

    def plan(self, event: ChangeEvent) -> Plan: ...
