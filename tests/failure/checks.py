"""What must hold in PostgreSQL and Cassandra after a fault, whatever the API answered.

- A write that got a 2xx is never lost: its effect is in PostgreSQL unless a later
  request touched the same thing.
- A write that got an error left nothing half-written: every count PostgreSQL keeps
  beside the rows (shard, follower, following, like, comment counts) matches the rows.
- No feed in Cassandra holds a shard twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.failure.load import Load


def lost_acknowledged_writes(pg_conn: Any, load: Load) -> list[str]:
    """Return every acknowledged write whose effect is missing from PostgreSQL."""
    last: dict[tuple[str, Any], Any] = {}
    deleted = set()
    for o in load.outcomes:
        if o.op == "delete":
            deleted.add(o.target)
        if o.op in ("follow", "unfollow"):
            last[("edge", o.target)] = o
        if o.op in ("like", "unlike"):
            last[("like", o.target)] = o
    lost = []
    with pg_conn.cursor() as cur:
        for o in load.outcomes:
            if o.op == "post" and o.status == 201 and o.target not in deleted:
                cur.execute("SELECT 1 FROM shards WHERE id = %s", (o.target,))
                if cur.fetchone() is None:
                    lost.append(f"shard {o.target} acknowledged, not in PostgreSQL")
        for (kind, target), o in last.items():
            if not 200 <= o.status < 300:
                continue  # outcome unknown: the last request about it failed
            if kind == "edge":
                cur.execute("SELECT 1 FROM followers WHERE follower_id = %s AND followee_id = %s",
                            target)  # fmt: skip
            else:
                if target[0] in deleted:
                    continue
                cur.execute("SELECT 1 FROM likes WHERE shard_id = %s AND user_id = %s", target)
            exists = cur.fetchone() is not None
            if exists != (o.op in ("follow", "like")):
                lost.append(f"{o.op} {target} acknowledged, PostgreSQL disagrees")
    return lost


def half_written(pg_conn: Any, user_ids: list[int]) -> list[str]:
    """Return every kept count of these users and their shards that its rows contradict."""
    problems = []
    with pg_conn.cursor() as cur:
        cur.execute(
            """
            SELECT u.id, u.shard_count, (SELECT count(*) FROM shards s WHERE s.author_id = u.id),
                   u.follower_count, (SELECT count(*) FROM followers f WHERE f.followee_id = u.id),
                   u.following_count, (SELECT count(*) FROM followers f WHERE f.follower_id = u.id)
            FROM users u WHERE u.id = ANY(%s)""",
            (user_ids,),
        )
        for uid, sc, sn, frc, frn, fgc, fgn in cur.fetchall():
            if (sc, frc, fgc) != (sn, frn, fgn):
                problems.append(f"user {uid} counts {(sc, frc, fgc)} != rows {(sn, frn, fgn)}")
        cur.execute(
            """
            SELECT s.id, s.like_count, (SELECT count(*) FROM likes l WHERE l.shard_id = s.id),
                   s.comment_count, (SELECT count(*) FROM comments c WHERE c.shard_id = s.id)
            FROM shards s WHERE s.author_id = ANY(%s)""",
            (user_ids,),
        )
        for sid, lc, ln, cc, cn in cur.fetchall():
            if (lc, cc) != (ln, cn):
                problems.append(f"shard {sid} counts {(lc, cc)} != rows {(ln, cn)}")
    return problems


def duplicated_feed_rows(session: Any, user_ids: list[int]) -> list[str]:
    found = []
    for uid in user_ids:
        rows = session.execute("SELECT shard_id FROM feed_by_user WHERE user_id = %s", (uid,))
        counts = Counter(r.shard_id for r in rows)
        found += [f"feed {uid} holds shard {s} x{n}" for s, n in counts.items() if n > 1]
    return found
