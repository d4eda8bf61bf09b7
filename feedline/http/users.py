"""Sign users up (handle and password) and show their profiles."""

from __future__ import annotations

from datetime import datetime

import falcon

from feedline.db import Cursor
from feedline.http import auth, passwords, rows, spec, validation
from feedline.http.deps import Deps

PROFILE_SQL = """
    SELECT id, handle, follower_count, following_count, shard_count, created_at
    FROM users WHERE id = %s
"""


SIGNUP_FIELDS = {"handle": validation.handle, "password": passwords.password}


class Users:
    """``POST /v1/users``: create a user with a password and return a bearer token, once."""

    openapi = {
        "post": spec.operation(
            "Sign up; the response holds the only copy of the bearer token",
            {"201": spec.json_response("Created", spec.ref("CreatedUser"))},
            errors=("409", "429"),
            body=spec.ref("NewUser"),
            public=True,
        )
    }

    def __init__(self, deps: Deps):
        self._db = deps.db
        self._max_bytes = deps.settings.web.max_body_bytes
        self._ttl_s = deps.settings.accounts.token_ttl_s
        self._passwords = passwords.Passwords(deps.settings.accounts)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = validation.read_json(req, self._max_bytes, SIGNUP_FIELDS)
        handle = fields["handle"]
        digest = self._passwords.hash(fields["password"])  # before the transaction: ~30 ms
        token = auth.new_token()
        created = self._db.run(lambda cur: _create(cur, handle, digest, token, self._ttl_s))
        if created is None:
            raise falcon.HTTPConflict(
                title="Handle taken", description=f"The handle {handle!r} is already in use."
            )
        user_id, expires_at = created
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/users/{user_id}"
        resp.media = {
            "id": user_id,
            "handle": handle,
            "token": token,
            "expires_at": expires_at.isoformat(),
        }


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


def _create(
    cur: Cursor, handle: str, password_hash: str, token: str, ttl_s: int
) -> tuple[int, datetime] | None:
    """Insert the user, its password hash and its first token; None if the handle is taken."""
    cur.execute(
        "INSERT INTO users (handle) VALUES (%s) ON CONFLICT (handle) DO NOTHING RETURNING id",
        (handle,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    user_id = row[0]
    cur.execute(
        "INSERT INTO user_passwords (user_id, password_hash) VALUES (%s, %s)",
        (user_id, password_hash),
    )
    return user_id, auth.store_token(cur, user_id, token, ttl_s)


def _profile(cur: Cursor, user_id: int) -> dict | None:
    cur.execute(PROFILE_SQL, (user_id,))
    return rows.one(cur)
