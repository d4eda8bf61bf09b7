"""Delete the caller's account, keeping every count on other users' rows exact.

PostgreSQL removes the user's rows: ``ON DELETE CASCADE`` takes the shards (with every
comment and like on them), the user's comments on other shards, follow edges in both
directions, tokens and password. A cascade does not touch counts, so one transaction
first takes back what the user contributed to others: the following/follower counts of
the users on the other end of each edge, and the like and comment counts of other
users' shards. Every change, cascaded or not, is an ordinary row change with the whole
row in the WAL (``REPLICA IDENTITY FULL``), so the pipeline removes the user from the
read model with the same strategies as single unfollows, unlikes and shard deletes.

Concurrency: the user row is locked ``FOR UPDATE`` first. That blocks new rows that
refer to the user (their foreign-key check waits, then fails: such a request is a 409)
and follows or unfollows of the user (they lock both users), so the edges and comments
counted are the ones the cascade deletes. The caller's own likes are deleted explicitly
with ``RETURNING``, because an unlike from another of the caller's devices locks only the
shard: whichever delete gets the row decrements the count, never both. Two deletions
that lock each other's rows deadlock; PostgreSQL aborts one and ``Database.run`` retries
it once on a fresh transaction.
"""

from __future__ import annotations

import falcon

from feedline.db import Cursor
from feedline.http import auth, spec
from feedline.http.deps import Deps

LOCK_SQL = "SELECT 1 FROM users WHERE id = %(me)s FOR UPDATE"
# The users on the other end of each edge lose one following / one follower.
FOLLOWERS_SQL = """
    UPDATE users SET following_count = GREATEST(following_count - 1, 0)
    WHERE id IN (SELECT follower_id FROM followers WHERE followee_id = %(me)s)
"""
FOLLOWEES_SQL = """
    UPDATE users SET follower_count = GREATEST(follower_count - 1, 0)
    WHERE id IN (SELECT followee_id FROM followers WHERE follower_id = %(me)s)
"""
LIKES_SQL = """
    WITH gone AS (DELETE FROM likes WHERE user_id = %(me)s RETURNING shard_id)
    UPDATE shards s SET like_count = GREATEST(s.like_count - g.n, 0)
    FROM (SELECT shard_id, count(*) AS n FROM gone GROUP BY shard_id) g
    WHERE s.id = g.shard_id AND s.author_id <> %(me)s
"""
COMMENTS_SQL = """
    UPDATE shards s SET comment_count = GREATEST(s.comment_count - c.n, 0)
    FROM (SELECT shard_id, count(*) AS n FROM comments WHERE author_id = %(me)s
          GROUP BY shard_id) c
    WHERE s.id = c.shard_id AND s.author_id <> %(me)s
"""
DELETE_SQL = "DELETE FROM users WHERE id = %(me)s"


class Account:
    """``DELETE /v1/users/me``: delete the caller's account and everything it wrote."""

    openapi = {
        "delete": spec.operation(
            "Delete your account: profile, shards, comments, likes, follows and every token",
            {"204": spec.no_content("Deleted; feeds and lists drop the user shortly after")},
            errors=("404",),
        )
    }

    def __init__(self, deps: Deps):
        self._db = deps.db
        self._tokens = deps.tokens

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        user_id = auth.caller(req)
        if not self._db.run(lambda cur: delete_account(cur, user_id)):
            raise falcon.HTTPNotFound(title="No such user", description="Already deleted.")
        if self._tokens is not None:
            self._tokens.revoke_user(user_id)
        resp.status = falcon.HTTP_204


def delete_account(cur: Cursor, user_id: int) -> bool:
    """Delete ``user_id`` and fix others' counts, in the caller's transaction; False if gone."""
    me = {"me": user_id}
    cur.execute(LOCK_SQL, me)
    if cur.fetchone() is None:
        return False
    for sql in (FOLLOWERS_SQL, FOLLOWEES_SQL, LIKES_SQL, COMMENTS_SQL, DELETE_SQL):
        cur.execute(sql, me)
    return True
