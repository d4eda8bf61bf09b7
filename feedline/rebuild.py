"""Rebuild the Cassandra read model from PostgreSQL, safely while the pipeline runs.

For each user (or every user) it writes every row verify expects (see
``feedline.verify.source``) and deletes every row verify would call extra, all with one
write timestamp ``L - 1`` in the LSN domain of docs/events.md, where L is the WAL insert
position read just before the PostgreSQL snapshot was taken, and the snapshot had no
write transaction in progress (``Source(pin_lsn=True)`` retries until it has none, which
takes a probe transaction id: the snapshot's own list of running ids misses the newest). What
Cassandra holds is read with verify's reader, ``feedline.readmodel.partitions`` (every
column the pipeline writes), and written with the pipeline's own statements.

Why that timestamp is safe against a pipeline writing at the same time:

- every change the snapshot sees was written below L, so its event's LSN is < L - 1 or
  carries the very value the snapshot shows: rebuilding over a lagging pipeline fixes
  stale rows, and the late events that arrive afterwards lose to the rebuild;
- every change the snapshot does not see belongs to a transaction that wrote its WAL
  after L was read (none was in progress), so its LSN is >= L and it beats the rebuild;
  that includes rows created after the snapshot, which the rebuild's deletes of
  "extras" therefore cannot remove;
- TERMINAL deletes (shards, comments) beat everything, as before.

Reading the LSN *inside* the snapshot would not do: a transaction that commits after the
snapshot may already have written WAL below that LSN, and its change would lose.

Edges are written with ``edge_lsn = L - 1``: PostgreSQL does not keep the LSN of an
edge's last change, and any later unfollow or re-follow has a higher LSN anyway.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from feedline import cache_keys
from feedline import cassandra as cql
from feedline import statements as st
from feedline.fanout import PreparedStatements
from feedline.readmodel.partitions import Partitions
from feedline.settings import Settings
from feedline.strategies.common import mutation
from feedline.verify.model import Partition, Row, ms
from feedline.verify.runner import check_user, feed_cap, orphan_partitions, pull_window_ms
from feedline.verify.source import Expected, Source

logger = logging.getLogger(__name__)

INSERT = {
    "users_by_id": st.UPSERT_USER,
    "shards_by_id": st.UPSERT_SHARD,
    "shards_by_author": st.INSERT_AUTHOR_SHARD,
    "feed_by_user": st.INSERT_FEED_ITEM,
    "feed_by_user_author": st.INSERT_FEED_INDEX,
    "comments_by_shard": st.UPSERT_COMMENT,
    "likes_by_shard": st.UPSERT_LIKE,
    "followers_by_user": st.UPSERT_FOLLOWER,
    "following_by_user": st.UPSERT_FOLLOWING,
}
DELETE = {
    "users_by_id": st.DELETE_USER,
    "shards_by_id": st.DELETE_SHARD,
    "shards_by_author": st.DELETE_AUTHOR_SHARD,
    "feed_by_user": st.DELETE_FEED_ITEM,
    "feed_by_user_author": st.DELETE_FEED_INDEX,
    "comments_by_shard": st.DELETE_COMMENT,
    "likes_by_shard": st.DELETE_LIKE,
    "followers_by_user": st.DELETE_FOLLOWER,
    "following_by_user": st.DELETE_FOLLOWING,
}


@dataclass
class RebuildReport:
    timestamp: int = 0
    users: int = 0
    written: int = 0
    deleted: int = 0

    def summary(self) -> str:
        return (
            f"rebuild: {self.users} users, {self.written} rows written, {self.deleted} rows "
            f"deleted, at write timestamp {self.timestamp} (LSN domain)"
        )


def plan_user(
    expected: dict[Partition, list[Row]], actual: dict[Partition, list[Row]], ts: int
) -> tuple[list[Any], list[Any]]:
    """Return the upserts of every expected row and the deletes of every other row."""
    upserts, deletes = [], []
    for (table, _key), rows in expected.items():
        upserts += [_mutation(INSERT[table], row, ts) for row in rows]
    for (table, key), rows in actual.items():
        keep = {_pk(table, r) for r in expected.get((table, key), [])}
        deletes += [_mutation(DELETE[table], r, ts) for r in rows if _pk(table, r) not in keep]
    return upserts, deletes


def rebuild(
    settings: Settings,
    users: Iterable[int] | None = None,
    *,
    progress: bool | None = None,
    redis_client: Any = None,
) -> RebuildReport:
    """Rebuild ``users``' partitions (None: every user, and delete orphan partitions)."""
    report = RebuildReport()
    window_s = settings.pipeline.backfill_window_s
    with (
        Source(settings.postgres, window_s, pin_lsn=True, **feed_cap(settings)) as source,
        Partitions(settings.cassandra) as model,
    ):
        assert source.lsn is not None
        ts = report.timestamp = source.lsn
        prepared = PreparedStatements(model.session)
        concurrency = settings.pipeline.write_concurrency
        ids = list(users) if users is not None else None
        total = len(ids) if ids is not None else source.count_users()
        disable = None if progress is None else not progress
        with tqdm(total=total, unit="user", desc="rebuild", disable=disable,
                  file=sys.stderr) as bar:  # fmt: skip
            for user_id in ids if ids is not None else source.user_ids():
                expected, actual, found = check_user(
                    source, model, user_id, edge_lsn=ts, pull_window_ms=pull_window_ms(settings)
                )
                upserts, deletes = plan_user(expected.partitions, actual, ts)
                # Pull authors (docs/events.md, "Push and pull authors"): their rows are not
                # written (the merged read shows them); missing pull-list entries are.
                upserts += [
                    mutation(st.INSERT_PULL_FOLLOWING, (user_id, d.identity), ts)
                    for d in found
                    if d.table == "pull_following_by_user"
                ]
                deletes = _spare_newer_shards(source, cut_below_cap(expected, deletes, ts))
                _apply(model, prepared, upserts + deletes, concurrency)
                _invalidate(redis_client, expected.partitions)
                report.users += 1
                report.written += len(upserts)
                report.deleted += len(deletes)
                bar.update(1)
        if ids is None:
            for (table, _key), rows in orphan_partitions(source, model):
                deletes = [_mutation(DELETE[table], r, ts) for r in rows]
                _apply(model, prepared, deletes, concurrency)
                report.deleted += len(deletes)
    return report


def cut_below_cap(expected: Expected, deletes: list[Any], ts: int) -> list[Any]:
    """Replace the deletes of feed and index rows past the feed cap by range tombstones.

    As a trim does (docs/events.md, "Bounded feeds"): one on the feed below the cap's
    last row, one per author on the index, instead of one tombstone per row (a feed
    that grew before feeds were bounded holds thousands).
    """
    if not expected.beyond_cap:
        return deletes
    user, first = expected.user_id, expected.beyond_cap[0]
    line = (ms(first["created_at"]), first["shard_id"])

    def below(m: Any) -> bool:
        if m.statement not in FEED_DELETES:
            return False
        row = dict(zip(st.get(m.statement).binds, m.params, strict=True))
        return (ms(row["created_at"]), row["shard_id"]) <= line

    cut = [m for m in deletes if below(m)]
    authors = {r["author_id"] for r in expected.beyond_cap if r["author_id"] != user}
    authors |= {m.params[1] for m in cut if m.statement == st.DELETE_FEED_INDEX}
    ranges = [mutation(st.DELETE_FEED_BELOW, (user, *line), ts)]
    ranges += [mutation(st.DELETE_FEED_INDEX_BELOW, (user, a, *line), ts) for a in sorted(authors)]
    return [m for m in deletes if not below(m)] + ranges


def _spare_newer_shards(source: Source, deletes: list[Any]) -> list[Any]:
    """Drop deletes of feed (and feed index) rows whose shard was created after the snapshot.

    Fan-out writes a follower's feed row at the *edge's* LSN, which can be far below the
    rebuild's timestamp: a shard posted after the snapshot, fanned out before Cassandra
    was read, looks extra to the snapshot, and deleting it would win for good. A shard
    missing from the snapshot that exists now is such a shard; one that exists neither
    then nor now is a deleted shard's leftover, and goes.
    """
    feed = [m for m in deletes if m.statement in FEED_DELETES]
    if not feed:
        return deletes
    ids = sorted({_shard_of(m) for m in feed})
    unseen = [i for i in ids if i not in source.existing("shards", ids)]
    newer = source.existing_now("shards", unseen)
    return [m for m in deletes if not (m.statement in FEED_DELETES and _shard_of(m) in newer)]


FEED_DELETES = (st.DELETE_FEED_ITEM, st.DELETE_FEED_INDEX)


def _shard_of(m: Any) -> int:
    return dict(zip(st.get(m.statement).binds, m.params, strict=True))["shard_id"]


def _pk(table: str, row: Row) -> tuple[Any, ...]:
    return tuple(row[c] for c in st.TABLES[table].primary_key)


def _mutation(name: str, row: Row, ts: int) -> Any:
    return mutation(name, tuple(row[c] for c in st.get(name).binds), ts)


def _apply(model: Partitions, prepared: PreparedStatements, mutations: list, window: int) -> None:
    if mutations:
        statements = cql.group_statements(mutations, prepared.bind, cql.replica_key(model.session))
        cql.execute_all(model.session, statements, window)


def _invalidate(client: Any, partitions: dict[Partition, list[Row]]) -> None:
    """Drop the cache entries of what was rebuilt (best effort: entries have TTLs)."""
    if client is None:
        return
    keys = set()
    for table, key in partitions:
        if table == "users_by_id":
            keys |= {cache_keys.user(key), cache_keys.user_shards(key), cache_keys.feed(key),
                     cache_keys.followers(key), cache_keys.following(key),
                     cache_keys.pull_sources(key)}  # fmt: skip
        elif table == "shards_by_id":
            keys |= {cache_keys.shard(key), cache_keys.comments(key)}
    if keys:
        try:
            client.unlink(*keys)
        except Exception as exc:  # the cache is optional; TTLs bound staleness
            logger.warning("rebuild: cache invalidation failed: %s", exc)
