"""Comment on shards; PostgreSQL's triggers keep the shard's comment_count (migration 0004)."""

from __future__ import annotations

import falcon

from feedline.db import Cursor
from feedline.http import auth, pages, rows, spec, validation
from feedline.http.deps import Deps
from feedline.http.shards import not_found
from feedline.readmodel.formats import COMMENTS, iso

# Locking the shard's key first makes a concurrent delete happen either before (no shard:
# 404) or after (the comment goes with it); one statement, one round trip.
CREATE_SQL = """
    WITH shard AS (SELECT id FROM shards WHERE id = %(shard)s FOR KEY SHARE)
    INSERT INTO comments (shard_id, author_id, body)
    SELECT id, %(author)s, %(body)s FROM shard
    RETURNING id, shard_id, author_id, body, created_at
"""


class ShardComments:
    """``POST``/``GET /v1/shards/{shard_id}/comments``: comment; list oldest first.

    The list comes from the read model (comments_by_shard, first 100 cached whole under
    ``cache_keys.comments``), so a new comment shows once the pipeline has processed it.
    """

    openapi = {
        "get": spec.operation(
            "A shard's comments, oldest first",
            {"200": spec.json_response("A page of comments", spec.page_of(spec.ref("Comment")))},
            errors=("400", "404"),
            params=(spec.path_id("shard_id"), *spec.PAGE_PARAMS),
        ),
        "post": spec.operation(
            "Comment on a shard",
            {"201": spec.json_response("Created", spec.ref("Comment"))},
            errors=("404",),
            body=spec.ref("NewText"),
            params=(spec.path_id("shard_id"),),
        ),
    }

    def __init__(self, deps: Deps):
        self._db = deps.db
        self._reads = deps.reads
        self._max_bytes = deps.settings.web.max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response, shard_id: int) -> None:
        limit, cursor = pages.params(req)
        page = self._reads.page(COMMENTS, shard_id, cursor, limit)
        found, next_cursor = page.rows, page.next_cursor
        if cursor is None:
            self._reads.require("shard", shard_id, found)
        items = [
            {
                "id": cid,
                "shard_id": shard_id,
                "author_id": author,
                "body": body,
                "created_at": iso(ms),
            }
            for ms, cid, author, body in found
        ]
        resp.media = {"items": items, "next_cursor": next_cursor}

    def on_post(self, req: falcon.Request, resp: falcon.Response, shard_id: int) -> None:
        body = validation.read_json(req, self._max_bytes, {"body": validation.text})["body"]
        params = {"shard": shard_id, "author": auth.caller(req), "body": body}
        comment = self._db.run(lambda cur: _create(cur, params))
        if comment is None:
            raise not_found(shard_id)
        resp.status = falcon.HTTP_201
        resp.media = comment


def _create(cur: Cursor, params: dict) -> dict | None:
    cur.execute(CREATE_SQL, params)
    return rows.one(cur)
