"""Authenticate API calls by bearer token; the database stores only SHA-256 hashes.

A token is ``secrets.token_urlsafe(32)`` (256 random bits), shown once at signup. Since it
is random and long, an unsalted SHA-256 is enough: it cannot be brute-forced, and a hash
lookup stays one index probe. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

import falcon

from feedline.db import Cursor, Database
from feedline.http.token_cache import TokenCache

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,256}")
CHALLENGE = 'Bearer realm="feedline"'


def new_token() -> str:
    """Return a fresh random bearer token."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """Return the SHA-256 digest stored in ``user_tokens.token_hash``."""
    return hashlib.sha256(token.encode("ascii")).digest()


def bearer_token(header: str | None) -> str | None:
    """Extract a well-formed token from an ``Authorization`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not TOKEN_RE.fullmatch(token):
        return None
    return token


def store_token(cur: Cursor, user_id: int, token: str) -> None:
    """Record the hash of ``token`` for ``user_id`` (inside the caller's transaction)."""
    cur.execute(
        "INSERT INTO user_tokens (token_hash, user_id) VALUES (%s, %s)",
        (hash_token(token), user_id),
    )


def unauthorized(description: str) -> falcon.HTTPUnauthorized:
    return falcon.HTTPUnauthorized(
        title="Unauthorized", description=description, challenges=[CHALLENGE]
    )


class AuthMiddleware:
    """Require a valid bearer token on every /v1 route, and set ``req.context.user_id``.

    A resource opts a method out by listing it in its ``public_methods`` attribute (only
    ``POST /v1/users`` does: signing up is how one gets a token).
    """

    def __init__(self, db: Database, prefix: str = "/v1/", tokens: TokenCache | None = None):
        self._db = db
        self._prefix = prefix
        self._tokens = tokens

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        req.context.user_id = None
        if resource is None or not req.path.startswith(self._prefix):
            return
        if req.method in getattr(resource, "public_methods", ()):
            return
        token = bearer_token(req.get_header("Authorization"))
        if token is None:
            raise unauthorized("Send Authorization: Bearer <token>.")
        user_id = self._user_id(token)
        if user_id is None:
            raise unauthorized("The bearer token is not valid.")
        req.context.user_id = user_id

    def _user_id(self, token: str) -> int | None:
        """Look the token up, in the in-process token cache first when there is one."""
        if self._tokens is None:
            return self._db.run(lambda cur: _user_for(cur, token))
        digest = hash_token(token)
        user_id = self._tokens.get(digest)
        if user_id is None:
            user_id = self._db.run(lambda cur: _user_for(cur, token))
            if user_id is not None:
                self._tokens.put(digest, user_id)
        return user_id


def _user_for(cur: Cursor, token: str) -> int | None:
    cur.execute("SELECT user_id FROM user_tokens WHERE token_hash = %s", (hash_token(token),))
    row = cur.fetchone()
    return row[0] if row else None
