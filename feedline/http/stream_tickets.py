"""``POST /v1/stream-tickets``: a one-use ticket to open the live feed stream (feedline.tickets)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import falcon
import redis

from feedline import tickets
from feedline.errors import DependencyUnavailable
from feedline.http import auth, spec
from feedline.http.deps import Deps


class StreamTickets:
    """Mint a ticket for the caller; Redis holds it (hashed) for ``tickets.TTL_S``."""

    openapi = {
        "post": spec.operation(
            "A one-use ticket to open GET /v1/feed/stream from a browser (valid 60 s)",
            {"201": spec.json_response("A new ticket", spec.ref("StreamTicket"))},
        )
    }

    def __init__(self, deps: Deps):
        self._url = deps.settings.redis.url
        self._timeout = deps.settings.reads.redis_timeout_s * 10
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def _redis(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                t = self._timeout
                self._client = redis.Redis.from_url(
                    self._url, socket_timeout=t, socket_connect_timeout=t
                )
            return self._client

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        ticket = tickets.new()
        token = auth.bearer_token(req.get_header("Authorization"))
        assert token is not None  # the route is protected: AuthMiddleware checked it
        stored = tickets.value(auth.caller(req), auth.hash_token(token))
        try:
            self._redis().set(tickets.key(ticket), stored, ex=tickets.TTL_S)
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", "cannot store the ticket") from exc
        expires_at = datetime.now(UTC) + timedelta(seconds=tickets.TTL_S)
        resp.status = falcon.HTTP_201
        resp.media = {"ticket": ticket, "expires_at": expires_at.isoformat()}
