"""Follow and unfollow users, keeping both users' counts in the same transaction."""

from __future__ import annotations

import falcon

from feedline.db import Cursor
from feedline.http import auth, spec
from feedline.http.deps import Deps
from feedline.http.validation import unprocessable

# Lock both users in id order, so that A following B while B follows A cannot deadlock.
LOCK_SQL = "SELECT id FROM users WHERE id IN (%s, %s) ORDER BY id FOR NO KEY UPDATE"
FOLLOW_SQL = """
    INSERT INTO followers (follower_id, followee_id) VALUES (%s, %s)
    ON CONFLICT DO NOTHING RETURNING 1
"""
UNFOLLOW_SQL = "DELETE FROM followers WHERE follower_id = %s AND followee_id = %s RETURNING 1"
COUNTS_SQL = """
    UPDATE users SET
        following_count = GREATEST(following_count + CASE WHEN id = %(a)s THEN %(d)s ELSE 0 END, 0),
        follower_count = GREATEST(follower_count + CASE WHEN id = %(b)s THEN %(d)s ELSE 0 END, 0)
    WHERE id IN (%(a)s, %(b)s)
"""


def _operation(summary: str) -> dict:
    return spec.operation(
        summary,
        {"204": spec.no_content("Done (also when it already was)")},
        errors=("404", "422"),
        params=(spec.path_id("user_id"),),
    )


class Following:
    """``PUT``/``DELETE /v1/following/{user_id}``: idempotent follow and unfollow."""

    openapi = {"put": _operation("Follow a user"), "delete": _operation("Unfollow a user")}

    def __init__(self, deps: Deps):
        self._db = deps.db

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        self._change(auth.caller(req), user_id, FOLLOW_SQL, +1)
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        self._change(auth.caller(req), user_id, UNFOLLOW_SQL, -1)
        resp.status = falcon.HTTP_204

    def _change(self, me: int, other: int, sql: str, delta: int) -> None:
        if me == other:
            raise unprocessable("You cannot follow or unfollow yourself.")
        if not self._db.run(lambda cur: _apply(cur, me, other, sql, delta)):
            raise falcon.HTTPNotFound(title="No such user", description=f"No user {other}.")


def _apply(cur: Cursor, me: int, other: int, sql: str, delta: int) -> bool:
    """Apply the change and, only if it changed a row, the counts; False if a user is gone."""
    cur.execute(LOCK_SQL, (me, other))
    if len(cur.fetchall()) != 2:
        return False
    cur.execute(sql, (me, other))
    if cur.fetchone() is not None:
        cur.execute(COUNTS_SQL, {"a": me, "b": other, "d": delta})
    return True
