"""``GET /v1/feed`` and ``GET /v1/users/{id}/shards``: pages of shards from the read model."""

from __future__ import annotations

import falcon

from feedline.http import auth, pages, spec
from feedline.http.deps import Deps
from feedline.readmodel.formats import AUTHOR, FEED


class Feed:
    """``GET /v1/feed``: the caller's home feed, newest first (Redis, then Cassandra)."""

    openapi = {
        "get": spec.operation(
            "Your home feed, newest first",
            {"200": spec.json_response("A page of feed items", spec.page_of(spec.ref("FeedItem")))},
            errors=("400",),
            params=spec.PAGE_PARAMS,
        )
    }

    def __init__(self, deps: Deps):
        self._reads = deps.reads

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, cursor = pages.params(req)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = pages.shard_page(self._reads, FEED, auth.caller(req), cursor, limit)


class UserShards:
    """``GET /v1/users/{user_id}/shards``: what a user wrote, newest first."""

    openapi = {
        "get": spec.operation(
            "A user's shards, newest first",
            {"200": spec.json_response("A page of shards", spec.page_of(spec.ref("FeedItem")))},
            errors=("400", "404"),
            params=(spec.path_id("user_id"), *spec.PAGE_PARAMS),
        )
    }

    def __init__(self, deps: Deps):
        self._reads = deps.reads

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        limit, cursor = pages.params(req)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = pages.shard_page(self._reads, AUTHOR, user_id, cursor, limit)
