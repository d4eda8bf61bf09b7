"""Parse paging parameters and render pages of hydrated shards as pre-serialised JSON.

Feed and shard-list items are concatenated from the cached shard JSON plus the author's
handle, so a cache-hit page costs no ``json.dumps`` of its items.
"""

from __future__ import annotations

import json

import falcon

from feedline.readmodel.formats import OBJECT_KEYS, ListSpec, dumps
from feedline.readmodel.items import hydrate, wanted
from feedline.readmodel.model import ReadModel

DEFAULT_LIMIT, MAX_LIMIT = 20, 100


def params(req: falcon.Request) -> tuple[int, str | None]:
    """Return ``(limit, cursor)``; a bad limit or an unknown query parameter is a 400."""
    unknown = sorted(set(req.params) - {"limit", "cursor"})
    if unknown:
        raise falcon.HTTPBadRequest(
            title="Unknown query parameter",
            description=f"Only limit and cursor are accepted, not {', '.join(unknown)[:100]}.",
        )
    limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    return limit, req.get_param("cursor")


def shard_page(
    reads: ReadModel, spec: ListSpec, owner: int, cursor: str | None, limit: int
) -> bytes:
    """Render a page of (created_at, shard id, author id) rows as feed items.

    Kept rendered in the worker's near cache while the window, shards and profiles it
    shows are unchanged (the name holds the raw cursor: only a valid one was ever kept).
    """
    name = f"page:{spec.name}:{owner}:{limit}:{cursor}"
    return reads.rendered(spec, name, lambda: _render(reads, spec, owner, cursor, limit))


def _render(
    reads: ReadModel, spec: ListSpec, owner: int, cursor: str | None, limit: int
) -> tuple[bytes, list[str] | None]:
    """Return the page's JSON and the cache keys it shows (None if not all from the window).

    Shards gone from the read model (deleted) are dropped; the cursor still moves past them.
    """
    page = reads.page(spec, owner, cursor, limit)
    rows = page.rows
    if cursor is None and spec.name == "author":
        reads.require("user", owner, rows)
    items = [item for _, item in hydrate(reads, rows)]
    body = b'{"items":[' + b",".join(items) + b'],"next_cursor":' + dumps(page.next_cursor) + b"}"
    if not page.windowed:
        return body, None
    keys = [spec.key(owner), *page.keys]
    return body, keys + [OBJECT_KEYS[kind](id_) for kind, id_ in wanted(rows)]


def handle_of(profile: bytes | None) -> str | None:
    return None if profile is None else json.loads(profile)["handle"]
