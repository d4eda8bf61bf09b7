"""Expand fan-out steps into feed mutations by reading the read model.

Strategies stay pure by describing fan-out (``FanOutShard``, ``Backfill``, ``Unbackfill``,
``PurgeShard``) instead of doing it; the writer calls ``Expander.expand`` after the
event's own mutations are written. The timestamps chosen here carry the convergence
argument of docs/events.md: a follower's feed row is decided by the newest event about
the follow edge (its LSN), and a deleted shard's rows are deleted for good (TERMINAL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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


class PreparedStatements:
    """Prepare every registered statement once per session and bind mutations to them."""

    def __init__(self, session: Any):
        self._prepared = {name: session.prepare(s.cql) for name, s in st.STATEMENTS.items()}

    def bind(self, mutation: Mutation) -> Any:
        return self._prepared[mutation.statement].bind(st.bind_values(mutation))

    def query(self, name: str, *params: Any) -> Any:
        return self._prepared[name].bind(st.get(name).bind_values(params))


@dataclass(frozen=True)
class Expanded:
    """An expansion's feed writes, the cache keys they touch, and their re-validation.

    ``recheck`` runs after ``mutations`` are written and returns the deletes that undo
    rows whose edge or shard vanished meanwhile: a concurrent unfollow or shard delete
    may have read the feed before our write landed, so the writer of a row cleans it up.
    """

    mutations: list[Mutation]
    keys: set[str]
    recheck: Callable[[], list[Mutation]] = field(default=lambda: [])


class Expander:
    """Turn one expansion into its feed writes, reading what it needs."""

    def __init__(self, session: Any, prepared: PreparedStatements, pipeline: PipelineSettings):
        self._session = session
        self._prepared = prepared
        self._backfill_limit = pipeline.backfill_limit

    def expand(self, expansion: Expansion) -> Expanded:
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

    def _shard_exists(self, shard_id: int) -> bool:
        return self._rows(st.SELECT_SHARD_EXISTS, shard_id).one() is not None

    def _followers(self, author_id: int) -> dict[int, int | None]:
        return {r.follower_id: r.edge_lsn for r in self._rows(st.SELECT_FOLLOWERS, author_id)}

    def _fan_out(self, e: FanOutShard) -> Expanded:
        """Put a new shard in each follower's feed, timestamped by that follow's LSN."""
        written = {
            f: (lsn if lsn is not None else e.lsn)
            for f, lsn in self._followers(e.author_id).items()
        }
        mutations = [
            _feed_insert(f, e.created_at, e.shard_id, e.author_id, ts) for f, ts in written.items()
        ]

        def recheck() -> list[Mutation]:
            if not self._shard_exists(e.shard_id):
                return [_feed_delete(f, e.created_at, e.shard_id, TERMINAL) for f in written]
            still = self._followers(e.author_id)
            return [
                _feed_delete(f, e.created_at, e.shard_id, ts)
                for f, ts in written.items()
                if f not in still
            ]

        return Expanded(mutations, {cache_keys.feed(f) for f in written}, recheck)

    def _backfill(self, e: Backfill) -> Expanded:
        """Copy the followee's latest shards into the follower's feed at the follow's LSN."""
        rows = self._rows(st.SELECT_LATEST_AUTHOR_SHARDS, e.followee_id, self._backfill_limit)
        written = [(r.created_at, r.shard_id) for r in rows]
        mutations = [
            _feed_insert(e.follower_id, created, sid, e.followee_id, e.lsn)
            for created, sid in written
        ]

        def recheck() -> list[Mutation]:
            edge = self._rows(st.SELECT_EDGE, e.follower_id, e.followee_id).one()
            if edge is None:
                return [_feed_delete(e.follower_id, c, s, e.lsn) for c, s in written]
            latest = self._rows(st.SELECT_LATEST_AUTHOR_SHARDS, e.followee_id, self._backfill_limit)
            still = {r.shard_id for r in latest}
            return [
                _feed_delete(e.follower_id, c, s, TERMINAL)
                for c, s in written
                if s not in still and not self._shard_exists(s)
            ]

        return Expanded(mutations, {cache_keys.feed(e.follower_id)}, recheck)

    def _unbackfill(self, e: Unbackfill) -> Expanded:
        """Delete what the follower's feed holds from the followee, at the unfollow's LSN.

        Reading the feed itself (not shards_by_author) also finds a shard whose delete
        raced this unfollow; rows written after this read are cleaned up by their writer's
        recheck, which finds the edge gone.
        """
        rows = self._rows(st.SELECT_FEED_ITEMS_BY_AUTHOR, e.follower_id, e.followee_id)
        mutations = [_feed_delete(e.follower_id, r.created_at, r.shard_id, e.lsn) for r in rows]
        return Expanded(mutations, {cache_keys.feed(e.follower_id)})

    def _purge(self, e: PurgeShard) -> Expanded:
        """Delete a deleted shard from every follower's feed, for good."""
        followers = self._followers(e.author_id)
        mutations = [_feed_delete(f, e.created_at, e.shard_id, TERMINAL) for f in followers]
        return Expanded(mutations, {cache_keys.feed(f) for f in followers})


def _feed_insert(user_id: int, created_at: Any, shard_id: int, author_id: int, ts: int) -> Mutation:
    params = (user_id, created_at, shard_id, author_id)
    return Mutation(st.INSERT_FEED_ITEM, params, ts, ("feed_by_user", user_id))


def _feed_delete(user_id: int, created_at: Any, shard_id: int, ts: int) -> Mutation:
    params = (user_id, created_at, shard_id)
    return Mutation(st.DELETE_FEED_ITEM, params, ts, ("feed_by_user", user_id))
