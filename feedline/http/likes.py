"""Like and unlike shards; PostgreSQL's triggers keep the shard's like_count.

The count changes (migration 0004), in this transaction, only for a row the statement
really inserted or deleted, so a repeated like or unlike changes nothing.
"""

from __future__ import annotations

import falcon

from feedline.db import Cursor
from feedline.http import auth, spec
from feedline.http.deps import Deps
from feedline.http.shards import not_found

# Lock the shard first: it must exist, and concurrent likes then count one at a time. One
# statement (one round trip): the change reads the locked row, so it runs after the lock,
# and the shard's row comes back only if it exists.
LIKE_SQL = """
    WITH shard AS (SELECT id FROM shards WHERE id = %(shard)s FOR NO KEY UPDATE),
    changed AS (
        INSERT INTO likes (shard_id, user_id) SELECT id, %(user)s FROM shard
        ON CONFLICT DO NOTHING
    )
    SELECT 1 FROM shard
"""
UNLIKE_SQL = """
    WITH shard AS (SELECT id FROM shards WHERE id = %(shard)s FOR NO KEY UPDATE),
    changed AS (
        DELETE FROM likes USING shard WHERE likes.shard_id = shard.id
        AND likes.user_id = %(user)s
    )
    SELECT 1 FROM shard
"""


def _operation(summary: str) -> dict:
    return spec.operation(
        summary,
        {"204": spec.no_content("Done (also when it already was)")},
        errors=("404",),
        params=(spec.path_id("shard_id"),),
    )


class ShardLike:
    """``PUT``/``DELETE /v1/shards/{shard_id}/like``: idempotent like and unlike."""

    openapi = {"put": _operation("Like a shard"), "delete": _operation("Unlike a shard")}

    def __init__(self, deps: Deps):
        self._db = deps.db

    def on_put(self, req: falcon.Request, resp: falcon.Response, shard_id: int) -> None:
        self._change(shard_id, auth.caller(req), LIKE_SQL)
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, shard_id: int) -> None:
        self._change(shard_id, auth.caller(req), UNLIKE_SQL)
        resp.status = falcon.HTTP_204

    def _change(self, shard_id: int, user_id: int, sql: str) -> None:
        if not self._db.run(lambda cur: _apply(cur, shard_id, user_id, sql)):
            raise not_found(shard_id)


def _apply(cur: Cursor, shard_id: int, user_id: int, sql: str) -> bool:
    """Apply the change (the trigger counts it); False if no shard."""
    cur.execute(sql, {"shard": shard_id, "user": user_id})
    return cur.fetchone() is not None
