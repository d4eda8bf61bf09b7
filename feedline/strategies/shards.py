"""Mirror ``shards`` into shards_by_id, shards_by_author and feeds (fan-out on write).

The shard's own rows and its author's feed row are written at the LSN; followers' feed rows
are the writer's job (``FanOutShard``) at each follower's edge LSN, because the latest
follow/unfollow of a pair decides whether the shard belongs in that feed. A shard id is
never reused, so a delete removes every copy at TERMINAL: nothing replayed or late (a
backfill that read the shard just before it went) can resurrect it.
"""

from __future__ import annotations

from typing import Any

from feedline import cache_keys
from feedline import statements as st
from feedline.errors import AdaptError
from feedline.notices import AuthorNotice, ShardNotice
from feedline.strategies.base import TERMINAL, ChangeEvent, FanOutShard, Plan, PurgeShard
from feedline.strategies.common import TableStrategy, mutation


def _placement(row: dict[str, Any]) -> tuple[Any, Any]:
    return (row["author_id"], row["created_at"])


def _keys(row: dict[str, Any]) -> tuple[str, ...]:
    return (
        cache_keys.shard(row["id"]),
        cache_keys.user_shards(row["author_id"]),
        cache_keys.feed(row["author_id"]),
    )


class ShardsStrategy(TableStrategy):
    """Plan shard writes, fan-out and purges."""

    table = "shards"

    def upsert(self, event: ChangeEvent) -> Plan:
        """Write a new shard (c, r) or its changed content (u)."""
        return self._update(event) if event.op == "u" else self._create(event)

    def _create(self, event: ChangeEvent) -> Plan:
        """Write the shard, its author index and author feed row, then fan it out."""
        s = event.after
        assert s is not None
        sid, author, created = s["id"], s["author_id"], s["created_at"]
        lsn = event.lsn
        row = (sid, author, s["body"], s["like_count"], s["comment_count"], created)
        return Plan(
            mutations=(
                mutation(st.UPSERT_SHARD, row, lsn),
                mutation(st.INSERT_AUTHOR_SHARD, (author, created, sid), lsn),
                mutation(st.INSERT_FEED_ITEM, (author, created, sid, author), lsn),
            ),
            expansions=(FanOutShard(author, sid, created, lsn),),
            invalidations=_keys(s),
            notices=(ShardNotice.of(author, sid, created),),
        )

    def _update(self, event: ChangeEvent) -> Plan:
        """Write body and counts; refuse a move of author or created_at (see docs/events.md).

        A move would re-key shards_by_author and every feed row; the API never does it, and
        guessing would break the edge-LSN rule on followers' feeds, so it is a poison event.
        """
        s, old = event.after, event.before
        assert s is not None
        if old is not None and _placement(old) != _placement(s):
            raise AdaptError(
                f"shards {s['id']}: an update moving author_id/created_at is not supported"
            )
        params = (s["id"], s["body"], s["like_count"], s["comment_count"])
        return Plan(
            mutations=(mutation(st.UPDATE_SHARD, params, event.lsn),),
            invalidations=(cache_keys.shard(s["id"]),),
        )

    def delete(self, event: ChangeEvent) -> Plan:
        """Remove the shard everywhere at TERMINAL, followers' feeds through PurgeShard."""
        s = event.before
        assert s is not None
        sid, author, created = s["id"], s["author_id"], s["created_at"]
        return Plan(
            mutations=(
                mutation(st.DELETE_SHARD, (sid,), TERMINAL),
                mutation(st.DELETE_AUTHOR_SHARD, (author, created, sid), TERMINAL),
                mutation(st.DELETE_FEED_ITEM, (author, created, sid), TERMINAL),
            ),
            expansions=(PurgeShard(author, sid, created),),
            invalidations=_keys(s),
            notices=(AuthorNotice(author),),
        )
