"""Delete the caller's account; PostgreSQL's cascades and count triggers do the rest.

PostgreSQL removes the user's rows: ``ON DELETE CASCADE`` takes the shards (with every
comment and like on them), the user's comments and likes on other shards, follow edges
in both directions, tokens and password. Each cascaded delete fires the count triggers
(migration 0004) in this transaction, so the users on the other end of each edge lose a
follower or a following, and other users' shards lose the user's likes and comments,
exactly once per row deleted. A count row deleted earlier in the same cascade (this
user, their shards) is not found by its trigger: it changes no count and emits no
update. Every change, cascaded or not, is an ordinary row change with the whole row in
the WAL (``REPLICA IDENTITY FULL``), so the pipeline removes the user from the read
model with the same strategies as single unfollows, unlikes and shard deletes.

Concurrency: first the user and every user whose counts the cascade changes (both ends
of the follow edges, the authors of the shards the user liked or commented on) are
locked ``FOR UPDATE`` in id order. The user's lock blocks new rows that refer to the user
(their foreign-key check waits, then fails: such a request is a 409). The id order is
the one the follow path and the count triggers use, so two deletions that touch each
other's rows (two users who follow each other) queue instead of deadlocking. A writer
that locks in another order (an author deleting a shard the user liked locks the shard,
then its author) can still deadlock with a deletion; PostgreSQL aborts one and
``Database.run`` retries it once on a fresh transaction. Counts stay exact either way:
a trigger counts only the rows its statement deleted, so an unlike from another device
racing the cascade decrements once, whichever gets the row.
"""

from __future__ import annotations

import falcon

from feedline.db import Cursor
from feedline.http import auth, spec
from feedline.http.deps import Deps

# Lock the user and the users whose counts the cascade changes, in id order; true if the
# user is still there.
LOCK_SQL = """
    SELECT coalesce(bool_or(id = %(me)s), false) FROM (
        SELECT id FROM users WHERE id IN (
            SELECT %(me)s
            UNION ALL SELECT follower_id FROM followers WHERE followee_id = %(me)s
            UNION ALL SELECT followee_id FROM followers WHERE follower_id = %(me)s
            UNION ALL SELECT s.author_id FROM likes l JOIN shards s ON s.id = l.shard_id
                      WHERE l.user_id = %(me)s
            UNION ALL SELECT s.author_id FROM comments c JOIN shards s ON s.id = c.shard_id
                      WHERE c.author_id = %(me)s)
        ORDER BY id FOR UPDATE
    ) locked
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
    """Delete ``user_id`` in the caller's transaction (triggers fix the counts); False if gone."""
    me = {"me": user_id}
    cur.execute(LOCK_SQL, me)
    if not cur.fetchone()[0]:
        return False
    cur.execute(DELETE_SQL, me)
    return True
