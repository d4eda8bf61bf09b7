"""Log in (mint a new bearer token from handle and password) and log out (revoke it).

Each login mints its own token, so a user can hold one per device and revoke each alone.
A failed login says only that the handle or the password is wrong, and costs the same
argon2 verification whether the handle exists or not (see :mod:`feedline.http.passwords`).
"""

from __future__ import annotations

from datetime import datetime

import falcon

from feedline.db import Cursor
from feedline.http import auth, passwords, spec, validation
from feedline.http.deps import Deps

LOGIN_FIELDS = {"handle": validation.handle, "password": passwords.password}
CREDENTIALS_SQL = """
    SELECT u.id, p.password_hash FROM users u
    LEFT JOIN user_passwords p ON p.user_id = u.id WHERE u.handle = %s
"""
PURGE_SQL = "DELETE FROM user_tokens WHERE user_id = %s AND expires_at <= now()"
REHASH_SQL = "UPDATE user_passwords SET password_hash = %s, updated_at = now() WHERE user_id = %s"


class Sessions:
    """``POST /v1/sessions``: exchange handle and password for a new bearer token."""

    openapi = {
        "post": spec.operation(
            "Log in; the response holds the only copy of a new bearer token",
            {
                "201": spec.json_response("Logged in", spec.ref("NewSession")),
                "401": spec.json_response("Wrong handle or password", spec.ref("Error")),
            },
            errors=("429",),
            body=spec.ref("Login"),
            public=True,
        )
    }

    def __init__(self, deps: Deps):
        self._db = deps.db
        self._max_bytes = deps.settings.web.max_body_bytes
        self._ttl_s = deps.settings.accounts.token_ttl_s
        self._passwords = passwords.Passwords(deps.settings.accounts)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = validation.read_json(req, self._max_bytes, LOGIN_FIELDS)
        handle, candidate = fields["handle"], fields["password"]
        found = self._db.run(lambda cur: _credentials(cur, handle))
        user_id, stored = found if found is not None else (None, None)
        # Verify even when there is no such user (a dummy hash): same time either way.
        if not self._passwords.verify(stored, candidate) or user_id is None:
            raise _login_failed()
        assert stored is not None
        rehash = self._passwords.hash(candidate) if self._passwords.needs_rehash(stored) else None
        token = auth.new_token()
        expires_at = self._db.run(lambda cur: _mint(cur, user_id, token, self._ttl_s, rehash))
        if expires_at is None:  # the account was deleted meanwhile
            raise _login_failed()
        resp.status = falcon.HTTP_201
        resp.media = {
            "user_id": user_id,
            "handle": handle,
            "token": token,
            "expires_at": expires_at.isoformat(),
        }


class CurrentSession:
    """``DELETE /v1/sessions/current``: revoke the token this request carries (log out)."""

    openapi = {
        "delete": spec.operation(
            "Log out: revoke the bearer token of this request (other tokens keep working)",
            {"204": spec.no_content("Revoked")},
        )
    }

    def __init__(self, deps: Deps):
        self._db = deps.db
        self._tokens = deps.tokens

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        user_id = auth.caller(req)
        token = auth.bearer_token(req.get_header("Authorization"))
        if token is None:  # the middleware accepted it, so this cannot happen
            raise auth.unauthorized("Send Authorization: Bearer <token>.")
        self._db.run(lambda cur: auth.revoke_token(cur, user_id, token))
        if self._tokens is not None:
            self._tokens.revoke(auth.hash_token(token))
        resp.status = falcon.HTTP_204


def _login_failed() -> falcon.HTTPUnauthorized:
    """The one answer to every failed login: it tells nothing about which part was wrong."""
    return falcon.HTTPUnauthorized(
        title="Login failed",
        description="The handle or the password is wrong.",
        challenges=[auth.CHALLENGE],
    )


def _credentials(cur: Cursor, handle: str) -> tuple[int, str | None] | None:
    cur.execute(CREDENTIALS_SQL, (handle,))
    row = cur.fetchone()
    return (row[0], row[1]) if row else None


def _mint(cur: Cursor, user_id: int, token: str, ttl_s: int, rehash: str | None) -> datetime | None:
    """Store a new token (and a re-hashed password); None if the user is gone.

    Also deletes the user's expired tokens: nothing else would, and each login adds one.
    """
    cur.execute("SELECT 1 FROM users WHERE id = %s FOR KEY SHARE", (user_id,))
    if cur.fetchone() is None:
        return None
    cur.execute(PURGE_SQL, (user_id,))
    if rehash is not None:
        cur.execute(REHASH_SQL, (rehash, user_id))
    return auth.store_token(cur, user_id, token, ttl_s)
