"""Mirror ``likes`` into ``likes_by_shard``; the shard's like_count comes with its own update.

Likes are deleted at the LSN, not TERMINAL: one (shard, user) pair can be liked, unliked and
liked again, and those changes of one row reach us in LSN order in one Kafka partition.
"""

from __future__ import annotations

from feedline import cache_keys
from feedline import statements as st
from feedline.strategies.base import ChangeEvent, Plan
from feedline.strategies.common import TableStrategy, mutation


class LikesStrategy(TableStrategy):
    """Plan like upserts and deletes at the change's LSN."""

    table = "likes"

    def upsert(self, event: ChangeEvent) -> Plan:
        """Record the like; invalidate the hydrated shard (its counts are about to change)."""
        row = event.after
        assert row is not None
        params = (row["shard_id"], row["user_id"], row["created_at"])
        return Plan(
            mutations=(mutation(st.UPSERT_LIKE, params, event.lsn),),
            invalidations=(cache_keys.shard(row["shard_id"]),),
        )

    def delete(self, event: ChangeEvent) -> Plan:
        """Remove the like at the LSN, so a later re-like (higher LSN) still wins."""
        row = event.before
        assert row is not None
        return Plan(
            mutations=(mutation(st.DELETE_LIKE, (row["shard_id"], row["user_id"]), event.lsn),),
            invalidations=(cache_keys.shard(row["shard_id"]),),
        )
