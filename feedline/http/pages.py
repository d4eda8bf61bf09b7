"""Parse paging parameters and render pages of hydrated shards as pre-serialised JSON.

Feed and shard-list items are concatenated from the cached shard JSON plus the author's
handle, so a cache-hit page costs no ``json.dumps`` of its items.
"""

from __future__ import annotations

import json

import falcon

from feedline.http.read_model import ListSpec, ReadModel, dumps

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


def handle_json(profile: bytes | None) -> bytes:
    """Return the profile's handle as a JSON string, or ``null`` if it is not replicated yet."""
    if profile is None:
        return b"null"
    return dumps(json.loads(profile)["handle"])


def shard_page(
    reads: ReadModel, spec: ListSpec, owner: int, cursor: str | None, limit: int
) -> bytes:
    """Render a page of (created_at, shard id, author id) rows as feed items.

    Shards gone from the read model (deleted) are dropped; the cursor still moves past them.
    """
    rows, next_cursor = reads.page(spec, owner, cursor, limit)
    if cursor is None and spec.name == "author":
        reads.require("user", owner, rows)
    objects = reads.objects([("shard", r[1]) for r in rows] + [("user", r[2]) for r in rows])
    handles: dict[int, bytes] = {}
    items = []
    for _, shard_id, author_id in rows:
        shard = objects[("shard", shard_id)]
        if shard is None:
            continue
        handle = handles.get(author_id)
        if handle is None:
            handle = handles[author_id] = handle_json(objects.get(("user", author_id)))
        items.append(shard[:-1] + b',"author_handle":' + handle + b"}")
    return b'{"items":[' + b",".join(items) + b'],"next_cursor":' + dumps(next_cursor) + b"}"


def handle_of(profile: bytes | None) -> str | None:
    return None if profile is None else json.loads(profile)["handle"]
