"""Expand fan-out steps into feed mutations by reading the read model.

Strategies stay pure by describing fan-out (``FanOutShard``, ``Backfill``, ``Unbackfill``,
``PurgeShard``) instead of doing it; the writer calls ``Expander.expand`` after the
event's own mutations are written. The timestamps chosen here carry the convergence
argument of docs/events.md: a follower's feed row is decided by the newest event about
the follow edge (its LSN), and a deleted shard's rows are deleted for good (TERMINAL).
"""

from __future__ import annotations

from typing import Any

from feedline import cache_keys
from feedline import statements as st
from feedline.settings import PipelineSettings
from feedline.strategies.base import (
    TERMINAL,
    Backfill,
    Expansion,
    FanOutShard,
    Mutation,
    PurgeShard,
    Unbackfill,
)

# Unbackfill removes at most this many of the followee's newest shards found by author,
# plus whatever the follower's feed holds from them (found by filtering its partition).
UNBACKFILL_LIMIT = 1000


class PreparedStatements:
    """Prepare every registered statement once per session and bind mutations to them."""

    def __init__(self, session: Any):
        self._prepared = {name: session.prepare(s.cql) for name, s in st.STATEMENTS.items()}

    def bind(self, mutation: Mutation) -> Any:
        return self._prepared[mutation.statement].bind(st.bind_values(mutation))

    def query(self, name: str, *params: Any) -> Any:
        return self._prepared[name].bind(st.get(name).bind_values(params))


class Expander:
    """Turn one expansion into (mutations, cache keys to invalidate)."""

    def __init__(self, session: Any, prepared: PreparedStatements, pipeline: PipelineSettings):
        self._session = session
        self._prepared = prepared
        self._backfill_limit = pipeline.backfill_limit

    def expand(self, expansion: Expansion) -> tuple[list[Mutation], set[str]]:
        if isinstance(expansion, FanOutShard):
            return self._fan_out(expansion)
        if isinstance(expansion, Backfill):
            return self._backfill(expansion)
        if isinstance(expansion, Unbackfill):
            return self._unbackfill(expansion)
        if isinstance(expansion, PurgeShard):
            return self._purge(expansion)
        raise TypeError(f"unknown expansion {expansion!r}")

    def _rows(self, name: str, *params: Any) -> Any:
        return self._session.execute(self._prepared.query(name, *params))

    def _fan_out(self, e: FanOutShard) -> tuple[list[Mutation], set[str]]:
        """Put a new shard in each follower's feed, timestamped by that follow's LSN."""
        mutations, keys = [], set()
        for row in self._rows(st.SELECT_FOLLOWERS, e.author_id):
            ts = row.edge_lsn if row.edge_lsn is not None else e.lsn
            mutations.append(
                _feed_insert(row.follower_id, e.created_at, e.shard_id, e.author_id, ts)
            )
            keys.add(cache_keys.feed(row.follower_id))
        return mutations, keys

    def _backfill(self, e: Backfill) -> tuple[list[Mutation], set[str]]:
        """Copy the followee's latest shards into the follower's feed at the follow's LSN."""
        rows = self._rows(st.SELECT_LATEST_AUTHOR_SHARDS, e.followee_id, self._backfill_limit)
        mutations = [
            _feed_insert(e.follower_id, r.created_at, r.shard_id, e.followee_id, e.lsn)
            for r in rows
        ]
        return mutations, {cache_keys.feed(e.follower_id)}

    def _unbackfill(self, e: Unbackfill) -> tuple[list[Mutation], set[str]]:
        """Delete the followee's shards from the follower's feed at the unfollow's LSN.

        Reading ``shards_by_author`` (written by a new shard before it reads followers)
        catches a fan-out racing with this unfollow; reading the feed itself catches
        older rows beyond that window.
        """
        found = {
            (r.created_at, r.shard_id)
            for r in self._rows(st.SELECT_LATEST_AUTHOR_SHARDS, e.followee_id, UNBACKFILL_LIMIT)
        }
        found |= {
            (r.created_at, r.shard_id)
            for r in self._rows(st.SELECT_FEED_ITEMS_BY_AUTHOR, e.follower_id, e.followee_id)
        }
        mutations = [
            _feed_delete(e.follower_id, created_at, sid, e.lsn) for created_at, sid in found
        ]
        return mutations, {cache_keys.feed(e.follower_id)}

    def _purge(self, e: PurgeShard) -> tuple[list[Mutation], set[str]]:
        """Delete a deleted shard from every follower's feed, for good."""
        mutations, keys = [], set()
        for row in self._rows(st.SELECT_FOLLOWERS, e.author_id):
            mutations.append(_feed_delete(row.follower_id, e.created_at, e.shard_id, TERMINAL))
            keys.add(cache_keys.feed(row.follower_id))
        return mutations, keys


def _feed_insert(user_id: int, created_at: Any, shard_id: int, author_id: int, ts: int) -> Mutation:
    params = (user_id, created_at, shard_id, author_id)
    return Mutation(st.INSERT_FEED_ITEM, params, ts, ("feed_by_user", user_id))


def _feed_delete(user_id: int, created_at: Any, shard_id: int, ts: int) -> Mutation:
    params = (user_id, created_at, shard_id)
    return Mutation(st.DELETE_FEED_ITEM, params, ts, ("feed_by_user", user_id))
