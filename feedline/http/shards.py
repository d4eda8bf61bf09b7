"""Post, read and delete shards; PostgreSQL's triggers keep the author's shard_count."""

from __future__ import annotations

import falcon

from feedline.db import Cursor
from feedline.http import auth, rows, spec, validation
from feedline.http.deps import Deps

# The count trigger (migration 0004) adds the shard to its author's shard_count.
CREATE_SQL = """
    INSERT INTO shards (author_id, body) VALUES (%(author)s, %(body)s)
    RETURNING id, author_id, body, created_at
"""
DETAIL_SQL = """
    SELECT id, author_id, body, created_at, like_count, comment_count
    FROM shards WHERE id = %s
"""
LOCK_SQL = "SELECT author_id FROM shards WHERE id = %s FOR UPDATE"
DELETE_SQL = "DELETE FROM shards WHERE id = %s"


def not_found(shard_id: int) -> falcon.HTTPNotFound:
    return falcon.HTTPNotFound(title="No such shard", description=f"No shard {shard_id}.")


class Shards:
    """``POST /v1/shards``: post a shard as the calling user."""

    openapi = {
        "post": spec.operation(
            "Post a shard",
            {"201": spec.json_response("Created", spec.ref("Shard"))},
            body=spec.ref("NewText"),
        )
    }

    def __init__(self, deps: Deps):
        self._db = deps.db
        self._max_bytes = deps.settings.web.max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = validation.read_json(req, self._max_bytes, {"body": validation.text})["body"]
        params = {"author": auth.caller(req), "body": body}
        shard = self._db.run(lambda cur: _fetch(cur, CREATE_SQL, params))
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/shards/{shard['id']}"
        resp.media = shard


class Shard:
    """``GET``/``DELETE /v1/shards/{shard_id}``: read with counts; delete (author only)."""

    openapi = {
        "get": spec.operation(
            "Read a shard with its like and comment counts",
            {"200": spec.json_response("The shard", spec.ref("ShardDetail"))},
            errors=("404",),
            params=(spec.path_id("shard_id"),),
        ),
        "delete": spec.operation(
            "Delete one of your shards (its comments and likes go with it)",
            {"204": spec.no_content("Deleted")},
            errors=("403", "404"),
            params=(spec.path_id("shard_id"),),
        ),
    }

    def __init__(self, deps: Deps):
        self._db = deps.db

    def on_get(self, req: falcon.Request, resp: falcon.Response, shard_id: int) -> None:
        shard = self._db.read(lambda cur: _fetch(cur, DETAIL_SQL, (shard_id,)))
        if shard is None:
            raise not_found(shard_id)
        resp.media = shard

    def on_delete(self, req: falcon.Request, resp: falcon.Response, shard_id: int) -> None:
        self._db.run(lambda cur: _delete(cur, shard_id, auth.caller(req)))
        resp.status = falcon.HTTP_204


def _fetch(cur: Cursor, sql: str, params: object) -> dict | None:
    cur.execute(sql, params)
    return rows.one(cur)


def _delete(cur: Cursor, shard_id: int, user_id: int) -> None:
    """Delete the shard if ``user_id`` wrote it; raising rolls the transaction back."""
    cur.execute(LOCK_SQL, (shard_id,))
    row = cur.fetchone()
    if row is None:
        raise not_found(shard_id)
    if row[0] != user_id:
        raise falcon.HTTPForbidden(
            title="Not your shard", description="Only a shard's author may delete it."
        )
    cur.execute(DELETE_SQL, (shard_id,))
