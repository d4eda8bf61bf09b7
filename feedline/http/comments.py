"""Comment on shards, keeping the shard's comment_count in the same transaction."""

from __future__ import annotations

import falcon

from feedline.db import Cursor
from feedline.http import rows, spec, validation
from feedline.http.deps import Deps
from feedline.http.shards import not_found

# Counting first locks the shard row, so a concurrent delete either happens before (no
# shard: 404) or after (the comment goes with it); one statement, one round trip.
CREATE_SQL = """
    WITH shard AS (
        UPDATE shards SET comment_count = comment_count + 1 WHERE id = %(shard)s RETURNING id
    )
    INSERT INTO comments (shard_id, author_id, body)
    SELECT id, %(author)s, %(body)s FROM shard
    RETURNING id, shard_id, author_id, body, created_at
"""


class ShardComments:
    """``POST /v1/shards/{shard_id}/comments``: comment on a shard.

    The paginated ``GET`` of the same path belongs here too (an ``on_get`` plus its
    ``openapi["get"]`` entry) when the read side is built.
    """

    openapi = {
        "post": spec.operation(
            "Comment on a shard",
            {"201": spec.json_response("Created", spec.ref("Comment"))},
            errors=("404",),
            body=spec.ref("NewText"),
            params=(spec.path_id("shard_id"),),
        )
    }

    def __init__(self, deps: Deps):
        self._db = deps.db
        self._max_bytes = deps.settings.web.max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response, shard_id: int) -> None:
        body = validation.read_json(req, self._max_bytes, {"body": validation.text})["body"]
        params = {"shard": shard_id, "author": req.context.user_id, "body": body}
        comment = self._db.run(lambda cur: _create(cur, params))
        if comment is None:
            raise not_found(shard_id)
        resp.status = falcon.HTTP_201
        resp.media = comment


def _create(cur: Cursor, params: dict) -> dict | None:
    cur.execute(CREATE_SQL, params)
    return rows.one(cur)
