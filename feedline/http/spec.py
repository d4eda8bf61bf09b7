"""Build OpenAPI 3.1 fragments: the shared schemas and helpers each resource uses.

Each resource class carries its own operations in an ``openapi`` dict keyed by lower-case
HTTP method, right beside its responders; :mod:`feedline.http.openapi` assembles them.
"""

from __future__ import annotations

from typing import Any

from feedline.http import passwords
from feedline.http.validation import BODY_MAX_CHARS, ID_MAX

ID = {"type": "integer", "minimum": 1, "maximum": ID_MAX}
TIMESTAMP = {"type": "string", "format": "date-time"}
HANDLE = {"type": "string", "pattern": "^[a-z0-9_]{3,30}$"}
# No NUL: PostgreSQL text cannot hold it (the API answers 422).
TEXT = {"type": "string", "minLength": 1, "maxLength": BODY_MAX_CHARS, "pattern": "^[^\\x00]*$"}
COUNT = {"type": "integer", "minimum": 0}
PASSWORD = {
    "type": "string",
    "minLength": passwords.MIN_CHARS,
    "maxLength": passwords.MAX_CHARS,
    "pattern": "^[^\\x00]*$",
}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a closed object schema with ``required`` and ``optional`` properties."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["title", "description"],
        "properties": {"title": {"type": "string"}, "description": {"type": "string"}},
    },
    "NewUser": obj({"handle": HANDLE, "password": PASSWORD}),
    "CreatedUser": obj(
        {"id": ID, "handle": HANDLE, "token": {"type": "string"}, "expires_at": TIMESTAMP}
    ),
    "Login": obj({"handle": HANDLE, "password": PASSWORD}),
    "StreamTicket": obj({"ticket": {"type": "string"}, "expires_at": TIMESTAMP}),
    "NewSession": obj(
        {"user_id": ID, "handle": HANDLE, "token": {"type": "string"}, "expires_at": TIMESTAMP}
    ),
    "User": obj(
        {
            "id": ID,
            "handle": HANDLE,
            "follower_count": COUNT,
            "following_count": COUNT,
            "shard_count": COUNT,
            "created_at": TIMESTAMP,
        }
    ),
    "NewText": obj({"body": TEXT}),
    "Shard": obj({"id": ID, "author_id": ID, "body": TEXT, "created_at": TIMESTAMP}),
    "ShardDetail": obj(
        {
            "id": ID,
            "author_id": ID,
            "body": TEXT,
            "created_at": TIMESTAMP,
            "like_count": COUNT,
            "comment_count": COUNT,
        }
    ),
    "Comment": obj(
        {"id": ID, "shard_id": ID, "author_id": ID, "body": TEXT, "created_at": TIMESTAMP}
    ),
    "FeedItem": obj(
        {
            "id": ID,
            "author_id": ID,
            "author_handle": {"anyOf": [HANDLE, {"type": "null"}]},
            "body": TEXT,
            "created_at": TIMESTAMP,
            "like_count": COUNT,
            "comment_count": COUNT,
        }
    ),
    "FollowUser": obj(
        {"id": ID, "handle": {"anyOf": [HANDLE, {"type": "null"}]}, "followed_at": TIMESTAMP}
    ),
    "Liveness": obj({"status": {"enum": ["ok"]}}),
}

ERRORS = {
    "400": "Malformed request (not JSON, not UTF-8; bad limit or cursor)",
    "401": "Missing or invalid bearer token",
    "403": "Not allowed for this user",
    "404": "No such resource",
    "409": "Conflict with existing state",
    "413": "Body too large",
    "415": "Body is not application/json",
    "422": "Well-formed but invalid fields",
    "429": "Rate limit reached; retry after Retry-After seconds",
    "503": "A dependency (PostgreSQL, Cassandra) is unavailable; retry",
}
# What every JSON write can fail with before it reaches the database.
BODY_ERRORS = ("400", "413", "415", "422")


PAGE_PARAMS = (
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "next_cursor of the previous page (opaque, signed)",
        "schema": {"type": "string"},
    },
)


def page_of(item: dict[str, Any]) -> dict[str, Any]:
    """Return the schema of a paginated response of ``item``s."""
    return obj(
        {"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}}
    )


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def no_content(description: str) -> dict[str, Any]:
    return {"description": description}


def operation(
    summary: str,
    responses: dict[str, Any],
    *,
    errors: tuple[str, ...] = (),
    body: dict[str, Any] | None = None,
    params: tuple[dict[str, Any], ...] = (),
    public: bool = False,
) -> dict[str, Any]:
    """Describe one operation; protected ones get the bearer scheme, 401 and 429 (failed
    token lookups are rate-limited per client), all get 503."""
    codes = set(errors) | {"503"} | (set() if public else {"401", "429"})
    if body is not None:
        codes |= set(BODY_ERRORS)
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            **{code: json_response(ERRORS[code], ref("Error")) for code in sorted(codes)},
            **responses,
        },
    }
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = json_body(body)
    if public:
        op["security"] = []
    return op
