"""``GET /v1/users/{id}/followers`` and ``/following``: edge lists from the read model.

Both tables cluster by the other user's id, so these lists are ordered by user id
(ascending), and the cursor is the last id served. Handles are hydrated from the cached
profiles; a profile the pipeline has not written yet shows as a null handle.
"""

from __future__ import annotations

import falcon

from feedline.http import pages, spec
from feedline.http.deps import Deps
from feedline.readmodel.formats import FOLLOWERS, FOLLOWING, ListSpec, iso


class _Edges:
    list_spec: ListSpec

    def __init__(self, deps: Deps):
        self._reads = deps.reads

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        limit, cursor = pages.params(req)
        page = self._reads.page(self.list_spec, user_id, cursor, limit)
        rows, next_cursor = page.rows, page.next_cursor
        if cursor is None:
            self._reads.require("user", user_id, rows)
        profiles = self._reads.objects([("user", other) for other, _ in rows])
        items = [
            {
                "id": other,
                "handle": pages.handle_of(profiles[("user", other)]),
                "followed_at": iso(ms),
            }
            for other, ms in rows
        ]
        resp.media = {"items": items, "next_cursor": next_cursor}


def _operation(summary: str) -> dict:
    return spec.operation(
        summary,
        {"200": spec.json_response("A page of users", spec.page_of(spec.ref("FollowUser")))},
        errors=("400", "404"),
        params=(spec.path_id("user_id"), *spec.PAGE_PARAMS),
    )


class Followers(_Edges):
    """``GET /v1/users/{user_id}/followers``."""

    list_spec = FOLLOWERS
    openapi = {"get": _operation("Who follows a user (by user id)")}


class FollowingList(_Edges):
    """``GET /v1/users/{user_id}/following``."""

    list_spec = FOLLOWING
    openapi = {"get": _operation("Whom a user follows (by user id)")}
