"""Authenticate API calls by bearer token; the database stores only SHA-256 hashes.

A token is ``secrets.token_urlsafe(32)`` (256 random bits), shown once when minted (sign-up
or ``POST /v1/sessions``). Since it is random and long, an unsalted SHA-256 is enough: it
cannot be brute-forced, and a hash lookup stays one index probe. Tokens are never logged.
A token stops working when it expires or is revoked (log out, account deletion); every
worker refuses it within 1 s (see :mod:`feedline.http.token_cache`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import falcon

from feedline.db import Cursor, Database
from feedline.http.token_cache import TokenCache

if TYPE_CHECKING:
    from feedline.http.ratelimit import RateLimiter

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


def store_token(cur: Cursor, user_id: int, token: str, ttl_s: int) -> datetime:
    """Record the hash of ``token`` for ``user_id``, valid ``ttl_s``; return its expiry.

    Runs inside the caller's transaction. The expiry is fixed here, at minting, and never
    extended by use (see README, "Accounts and tokens").
    """
    cur.execute(
        "INSERT INTO user_tokens (token_hash, user_id, expires_at)"
        " VALUES (%s, %s, now() + make_interval(secs => %s)) RETURNING expires_at",
        (hash_token(token), user_id, ttl_s),
    )
    return cur.fetchone()[0]


def revoke_token(cur: Cursor, user_id: int, token: str) -> bool:
    """Delete ``token`` if it is ``user_id``'s; tell whether it was there."""
    cur.execute(
        "DELETE FROM user_tokens WHERE token_hash = %s AND user_id = %s RETURNING 1",
        (hash_token(token), user_id),
    )
    return cur.fetchone() is not None


def unauthorized(description: str) -> falcon.HTTPUnauthorized:
    return falcon.HTTPUnauthorized(
        title="Unauthorized", description=description, challenges=[CHALLENGE]
    )


def is_public(resource: Any, method: str) -> bool:
    """Tell whether ``resource`` lets anyone call ``method``: its OpenAPI operation says so.

    The same ``security: []`` that tells clients an operation needs no token decides it
    here, so the document and the check cannot disagree. A method without an operation
    (OPTIONS, HEAD, anything made up) is not public: the default is to deny.
    """
    operation = getattr(resource, "openapi", {}).get(method.lower())
    return operation is not None and operation.get("security") == []


def caller(req: falcon.Request) -> int:
    """Return the authenticated caller's user id; deny (401) if the request has none.

    Responders call this instead of reading ``req.context`` so that a route the middleware
    somehow let through anonymously still fails closed, never with a 500 or as nobody.
    """
    user_id = getattr(req.context, "user_id", None)
    if user_id is None:
        raise unauthorized("Send Authorization: Bearer <token>.")
    return user_id


class AuthMiddleware:
    """Require a valid bearer token on every route, and set ``req.context.user_id``.

    The decision is made on the resource Falcon's router matched, after the router's own
    path normalisation, never on the raw path (``//v1/feed`` once skipped a prefix check
    and still reached the feed). Every matched route is protected unless its OpenAPI
    operation for the method is public (:func:`is_public`: sign-up, login, liveness, this
    document). An unmatched path has no resource; Falcon answers it 404 by itself.
    """

    def __init__(
        self,
        db: Database,
        tokens: TokenCache | None = None,
        limiter: RateLimiter | None = None,
    ):
        self._db = db
        self._tokens = tokens
        self._limiter = limiter

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        req.context.user_id = None
        if resource is None or is_public(resource, req.method):
            return
        token = bearer_token(req.get_header("Authorization"))
        if token is None:
            raise unauthorized("Send Authorization: Bearer <token>.")
        user_id = self._user_id(req, token)
        if user_id is None:
            raise unauthorized("The bearer token is not valid.")
        req.context.user_id = user_id

    def _user_id(self, req: falcon.Request, token: str) -> int | None:
        """Look the token up: the in-process cache, then (unless the rate limiter knows the
        hash is bad, or this client is over its failed-lookup limit) PostgreSQL."""
        digest = hash_token(token)
        if self._tokens is not None:
            user_id = self._tokens.get(digest)
            if user_id is not None:
                return user_id
        if self._limiter is not None and self._limiter.refuse_token_lookup(req, digest):
            return None  # this hash matched nothing moments ago: 401 without a query
        # Timed from before the query: the cache bounds how long a revocation committed
        # after this read began can go unnoticed (see feedline.http.token_cache).
        since = time.monotonic()
        generation = self._tokens.generation() if self._tokens is not None else None
        found = self._db.read(lambda cur: user_for_token(cur, token))  # one round trip
        if found is None:
            if self._limiter is not None:
                self._limiter.failed_token_lookup(req, digest)  # 429 once over the limit
            return None
        user_id, valid_s = found
        if self._tokens is not None:
            self._tokens.put(digest, user_id, since, valid_s, generation)
        return user_id


def user_for_token(cur: Cursor, token: str) -> tuple[int, float] | None:
    """Return the user of a token that exists and has not expired, and its seconds left."""
    cur.execute(
        "SELECT user_id, extract(epoch FROM expires_at - now()) FROM user_tokens"
        " WHERE token_hash = %s AND expires_at > now()",
        (hash_token(token),),
    )
    row = cur.fetchone()
    return (row[0], float(row[1])) if row else None
