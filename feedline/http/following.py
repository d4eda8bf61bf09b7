"""Follow and unfollow users; PostgreSQL's triggers count the edge on both users.

The follower/following counts are kept by the database (migration 0004), in this
transaction, for exactly the rows the statement inserted or deleted: a repeated follow
inserts nothing (``ON CONFLICT DO NOTHING``), a repeated unfollow deletes nothing, and
neither changes a count.
"""

from __future__ import annotations

import falcon

from feedline.db import Cursor
from feedline.http import auth, spec
from feedline.http.deps import Deps
from feedline.http.validation import unprocessable

# Both users must exist. Locked in id order, as the count trigger locks them, so that A
# following B while B follows A cannot deadlock. One statement (one round trip): the change
# reads how many users the lock found, so it runs after the lock, and only if both exist;
# the statement returns that number.
FOLLOW_SQL = """
    WITH pair AS (
        SELECT id FROM users WHERE id IN (%(me)s, %(other)s) ORDER BY id FOR NO KEY UPDATE
    ),
    found AS (SELECT count(*) AS n FROM pair),
    changed AS (
        INSERT INTO followers (follower_id, followee_id)
        SELECT %(me)s, %(other)s FROM found WHERE n = 2
        ON CONFLICT DO NOTHING
    )
    SELECT n FROM found
"""
UNFOLLOW_SQL = """
    WITH pair AS (
        SELECT id FROM users WHERE id IN (%(me)s, %(other)s) ORDER BY id FOR NO KEY UPDATE
    ),
    found AS (SELECT count(*) AS n FROM pair),
    changed AS (
        DELETE FROM followers USING found
        WHERE follower_id = %(me)s AND followee_id = %(other)s AND n = 2
    )
    SELECT n FROM found
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
        self._change(auth.caller(req), user_id, FOLLOW_SQL)
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        self._change(auth.caller(req), user_id, UNFOLLOW_SQL)
        resp.status = falcon.HTTP_204

    def _change(self, me: int, other: int, sql: str) -> None:
        if me == other:
            raise unprocessable("You cannot follow or unfollow yourself.")
        if not self._db.run(lambda cur: _apply(cur, me, other, sql)):
            raise falcon.HTTPNotFound(title="No such user", description=f"No user {other}.")


def _apply(cur: Cursor, me: int, other: int, sql: str) -> bool:
    """Apply the change (the trigger counts it); False if a user is gone."""
    cur.execute(sql, {"me": me, "other": other})
    return cur.fetchone()[0] == 2
