"""Mirror ``followers`` (follower_id follows followee_id) into both edge tables and feeds.

Both edge rows carry ``edge_lsn``: the LSN of the newest follow of the pair, and its
``created_at``, which places the follow's window (docs/events.md, "The expected feed"). Feed
rows that exist because of a follow (fan-out, backfill) are written at that edge LSN and
removed by an unfollow at the unfollow's LSN, so for every (follower, shard) feed cell the
latest edge event of the pair wins, whatever order the topics arrive in. Edges are deleted
at the LSN, never TERMINAL: a pair can follow, unfollow and follow again.
"""

from __future__ import annotations

from typing import Any

from feedline import cache_keys
from feedline import statements as st
from feedline.notices import EdgeNotice
from feedline.strategies.base import Backfill, ChangeEvent, Plan, Unbackfill
from feedline.strategies.common import TableStrategy, mutation


def _keys(row: dict[str, Any]) -> tuple[str, ...]:
    return (
        cache_keys.followers(row["followee_id"]),
        cache_keys.following(row["follower_id"]),
        cache_keys.feed(row["follower_id"]),
    )


class FollowersStrategy(TableStrategy):
    """Plan follow edges and the follower's feed backfill or unbackfill."""

    table = "followers"

    def upsert(self, event: ChangeEvent) -> Plan:
        """Write both edge rows at the LSN, then backfill the follower's feed (c, r, u)."""
        e = event.after
        assert e is not None
        follower, followee, created, lsn = (
            e["follower_id"],
            e["followee_id"],
            e["created_at"],
            event.lsn,
        )
        return Plan(
            mutations=(
                mutation(st.UPSERT_FOLLOWER, (followee, follower, created, lsn), lsn),
                mutation(st.UPSERT_FOLLOWING, (follower, followee, created, lsn), lsn),
            ),
            expansions=(Backfill(follower, followee, lsn, created),),
            invalidations=_keys(e),
            notices=(EdgeNotice(follower, followee),),
        )

    def delete(self, event: ChangeEvent) -> Plan:
        """Delete both edge rows at the LSN, then remove the followee from the follower's feed."""
        e = event.before
        assert e is not None
        follower, followee, lsn = e["follower_id"], e["followee_id"], event.lsn
        return Plan(
            mutations=(
                mutation(st.DELETE_FOLLOWER, (followee, follower), lsn),
                mutation(st.DELETE_FOLLOWING, (follower, followee), lsn),
            ),
            expansions=(Unbackfill(follower, followee, lsn),),
            invalidations=_keys(e),
            notices=(EdgeNotice(follower, followee),),
        )
