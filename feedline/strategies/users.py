"""Mirror the ``users`` table into ``users_by_id`` (profiles: handle and counts).

Counts are copied as PostgreSQL keeps them (updated in the same transaction as the follow or
shard that changed them), never incremented here, so a replay writes the same value again.
"""

from __future__ import annotations

from feedline import cache_keys
from feedline import statements as st
from feedline.strategies.base import ChangeEvent, ModeCheck, Plan
from feedline.strategies.common import TableStrategy, mutation


class UsersStrategy(TableStrategy):
    """Plan profile upserts and deletes at the change's LSN."""

    table = "users"

    def upsert(self, event: ChangeEvent) -> Plan:
        """Upsert the whole profile row; the newest LSN wins each cell."""
        u = event.after
        assert u is not None
        params = (
            u["id"],
            u["handle"],
            u["follower_count"],
            u["following_count"],
            u["shard_count"],
            u["created_at"],
        )
        # A changed follower count may move the author across the pull threshold; the
        # writer decides (and does nothing while pull is off).
        before = (event.before or {}).get("follower_count")
        check = event.op == "r" or (event.op == "u" and before != u["follower_count"])
        return Plan(
            mutations=(mutation(st.UPSERT_USER, params, event.lsn),),
            expansions=(ModeCheck(u["id"], u["follower_count"], event.lsn),) if check else (),
            invalidations=(cache_keys.user(u["id"]),),
        )

    def delete(self, event: ChangeEvent) -> Plan:
        """Delete the profile at the LSN (the user's edges, shards, ... have their own events)."""
        u = event.before
        assert u is not None
        return Plan(
            mutations=(mutation(st.DELETE_USER, (u["id"],), event.lsn),),
            invalidations=(cache_keys.user(u["id"]),),
        )
