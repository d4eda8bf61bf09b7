"""Sign users up and show their profiles."""

from __future__ import annotations

import falcon

from feedline.db import Cursor
from feedline.http import auth, rows, spec, validation
from feedline.http.deps import Deps

PROFILE_SQL = """
    SELECT id, handle, follower_count, following_count, shard_count, created_at
    FROM users WHERE id = %s
"""


class Users:
    """``POST /v1/users``: create a user and return its bearer token, once."""

    openapi = {
        "post": spec.operation(
            "Sign up; the response holds the only copy of the bearer token",
            {"201": spec.json_response("Created", spec.ref("CreatedUser"))},
            errors=("409",),
            body=spec.ref("NewUser"),
            public=True,
        )
    }

    def __init__(self, deps: Deps):
        self._db = deps.db
        self._max_bytes = deps.settings.web.max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        handle = validation.read_json(req, self._max_bytes, {"handle": validation.handle})["handle"]
        token = auth.new_token()
        user_id = self._db.run(lambda cur: _create(cur, handle, token))
        if user_id is None:
            raise falcon.HTTPConflict(
                title="Handle taken", description=f"The handle {handle!r} is already in use."
            )
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/users/{user_id}"
        resp.media = {"id": user_id, "handle": handle, "token": token}


class User:
    """``GET /v1/users/{user_id}``: a profile with its counts (from PostgreSQL for now)."""

    openapi = {
        "get": spec.operation(
            "Read a user's profile",
            {"200": spec.json_response("The profile", spec.ref("User"))},
            errors=("404",),
            params=(spec.path_id("user_id"),),
        )
    }

    def __init__(self, deps: Deps):
        self._db = deps.db

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        profile = self._db.run(lambda cur: _profile(cur, user_id))
        if profile is None:
            raise falcon.HTTPNotFound(title="No such user", description=f"No user {user_id}.")
        resp.media = profile


def _create(cur: Cursor, handle: str, token: str) -> int | None:
    cur.execute(
        "INSERT INTO users (handle) VALUES (%s) ON CONFLICT (handle) DO NOTHING RETURNING id",
        (handle,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    auth.store_token(cur, row[0], token)
    return row[0]


def _profile(cur: Cursor, user_id: int) -> dict | None:
    cur.execute(PROFILE_SQL, (user_id,))
    return rows.one(cur)
