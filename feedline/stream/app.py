"""The stream process's ASGI app: ``GET /v1/feed/stream`` (SSE) and ``GET /health``.

A plain ASGI callable rather than a framework: two routes, and the one that matters needs
what frameworks hide, a timeout on every write (a client that stops reading is dropped, its
socket buffer the only memory it ever held; it resumes by ``Last-Event-ID``) and a way to
end every stream when the process is told to stop. Routes are matched exactly on the
path; anything else is a JSON 404 (or 405), and the stream requires a reader: a bearer
token (checked in PostgreSQL like the API's) or a one-use ticket (``feedline.tickets``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from feedline import tickets
from feedline.db import Database
from feedline.errors import BadCursor, DependencyUnavailable
from feedline.http.auth import bearer_token, hash_token, user_for_token
from feedline.readmodel.model import ReadModel
from feedline.settings import Settings
from feedline.stream import position
from feedline.stream.hub import Hub, Listener
from feedline.stream.listener import Reader, Stream

logger = logging.getLogger(__name__)

PATH = "/v1/feed/stream"
PARAMS = {"limit", "cursor", "ticket"}
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store"),
    (b"x-accel-buffering", b"no"),  # proxies: do not buffer the stream
    (b"x-content-type-options", b"nosniff"),
]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class HttpError(Exception):
    """Answer the request with ``status`` and a JSON ``{"title", "description"}`` body."""

    def __init__(self, status: int, title: str, description: str, retry_after: int = 0):
        super().__init__(description)
        self.status, self.title, self.description = status, title, description
        self.retry_after = retry_after


class StreamApp:
    """Serve live feeds; ``hub``, ``reads`` and ``db`` are injected (tests build their own)."""

    def __init__(self, settings: Settings, reads: ReadModel, db: Database):
        self._settings = settings.stream
        self._redis_url = settings.redis.url
        self._reads = reads
        self._db = db
        self.hub = Hub(settings.redis.url)
        self._pool = ThreadPoolExecutor(settings.stream.read_threads, "stream-read")
        self._rounds = Reader(reads, self._pool, settings.stream.read_threads)
        self._redis: aioredis.Redis | None = None
        self._hub_tasks: list[asyncio.Task] = []

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except HttpError as exc:
            await _json(
                send,
                exc.status,
                {"title": exc.title, "description": exc.description},
                exc.retry_after,
            )

    # -- lifecycle -------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._redis = aioredis.Redis.from_url(
                    self._redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
                )
                self._hub_tasks = [
                    asyncio.create_task(self.hub.run()),
                    asyncio.create_task(self.hub.heartbeats(self._settings.heartbeat_s)),
                ]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                for task in self._hub_tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if self._redis is not None:
                    await self._redis.aclose()
                self._pool.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        """End every stream now (the process is stopping; clients resume elsewhere)."""
        self.hub.close()

    # -- requests --------------------------------------------------------------------------

    async def _route(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/health":
            if method != "GET":
                raise HttpError(405, "Method not allowed", "Use GET.")
            body = {
                "status": "ok" if self.hub.subscribed else "degraded",
                "streams": self.hub.count,
                "notices_subscribed": self.hub.subscribed,
                "notices": self.hub.notices,
                # read rounds, feed heads re-read, new shards sent without a feed read
                "reads": self._rounds.counts,
            }
            await _json(send, 200, body)
            return
        if path != PATH:
            raise HttpError(404, "Not found", f"No such path; the stream is {PATH}.")
        if method != "GET":
            raise HttpError(405, "Method not allowed", "Use GET.")
        await self._stream(scope, receive, send)

    async def _stream(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        params = _params(scope)
        view, limit = self._start(params, headers.get("last-event-id"))
        if self.hub.closing:  # before the reader: a refusal must not use up a ticket
            raise HttpError(503, "Service unavailable", "This stream is stopping.", 1)
        if self.hub.count >= self._settings.max_connections:
            raise HttpError(503, "Service unavailable", "Too many streams here.", 1)
        user_id, token, valid_s = await self._reader(params, headers.get("authorization"))
        listener = Listener(user_id, token)
        self.hub.add(listener)  # before the first read: every later notice reaches it
        stream = Stream(self.hub, self._reads, self._pool, self._rounds, listener, view, limit)
        gone = asyncio.create_task(_disconnected(receive, listener))
        loop = asyncio.get_running_loop()
        send_timeout_s = self._settings.send_timeout_s
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            # A stream ends at its credentials' expiry, and after max_age_s in any case: a
            # revoked token or a deleted account stops streaming by then (clients resume).
            ends = loop.time() + min(valid_s, self._settings.max_age_s)
            try:
                async for chunk in stream.events():
                    async with asyncio.timeout(send_timeout_s):  # a timer, no task
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    if loop.time() >= ends:
                        break
            except DependencyUnavailable as exc:
                # The read model failed mid-stream: end the response properly, so the
                # client resumes after the stream's retry delay from its Last-Event-ID.
                logger.warning("stream of user %d ended: %s", user_id, exc)
            async with asyncio.timeout(send_timeout_s):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            logger.info("stream of user %d: client not reading, disconnected", user_id)
        finally:
            gone.cancel()
            self.hub.remove(listener)

    def _start(
        self, params: dict[str, str], last_event_id: str | None
    ) -> tuple[tuple[position.Position, ...], int]:
        """Return the client's view and limit: from Last-Event-ID or ``cursor``, else empty."""
        s = self._settings
        text = last_event_id or params.get("cursor")
        limit = _limit(params.get("limit"), s.default_limit, s.max_limit)
        if not text:
            return position.EMPTY, limit
        try:
            view, held = position.decode(text, s.max_limit)
        except BadCursor as exc:
            raise HttpError(
                400, "Bad position", "Last-Event-ID or cursor is not a stream position."
            ) from exc
        if "limit" in params and held != limit:
            raise HttpError(400, "Bad limit", f"This position is for limit={held}.")
        return view, held

    async def _reader(
        self, params: dict[str, str], authorization: str | None
    ) -> tuple[int, str, float]:
        """Return the reader, their token's hash (hex) and for how long (s) it holds: a
        bearer token's user until it expires, else a ticket's (redeemed once) for
        max_age_s; a revocation of that token ends the stream before (``Hub.revoke``)."""
        token = bearer_token(authorization)
        if token is not None:
            loop = asyncio.get_running_loop()
            try:
                found = await loop.run_in_executor(
                    self._pool, self._db.read, lambda cur: user_for_token(cur, token)
                )
            except DependencyUnavailable as exc:
                raise HttpError(503, "Service unavailable", "Cannot check the token.", 1) from exc
            if found is None:
                raise HttpError(401, "Unauthorized", "The bearer token is not valid.")
            return found[0], hash_token(token).hex(), found[1]
        ticket = params.get("ticket")
        if ticket is None:
            raise HttpError(
                401, "Unauthorized", "Send Authorization: Bearer <token>, or ?ticket=<ticket>."
            )
        assert self._redis is not None
        try:
            redeemed = tickets.user_of(await self._redis.getdel(tickets.key(ticket)))
        except RedisError as exc:
            raise HttpError(503, "Service unavailable", "Cannot check the ticket.", 1) from exc
        if redeemed is None:
            raise HttpError(401, "Unauthorized", "The ticket is unknown, used or expired.")
        return redeemed[0], redeemed[1], float(self._settings.max_age_s)


def _params(scope: dict[str, Any]) -> dict[str, str]:
    try:
        parsed = parse_qs(scope.get("query_string", b"").decode(), strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise HttpError(400, "Bad query", "The query string is not UTF-8.") from exc
    unknown = sorted(set(parsed) - PARAMS)
    if unknown:
        raise HttpError(
            400,
            "Unknown query parameter",
            f"Only limit, cursor and ticket are accepted, not {', '.join(unknown)[:100]}.",
        )
    if any(len(v) > 1 for v in parsed.values()):
        raise HttpError(400, "Repeated query parameter", "Give each parameter once.")
    return {k: v[0] for k, v in parsed.items()}


def _limit(raw: str | None, default: int, most: int) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= most:
        raise HttpError(400, "Bad limit", f"limit is an integer from 1 to {most}.")
    return int(raw)


async def _disconnected(receive: Receive, listener: Listener) -> None:
    """Wait for the client to hang up, then wake its stream so that it ends."""
    while (await receive())["type"] != "http.disconnect":
        pass
    listener.gone = True
    listener.wake.set()


async def _json(send: Send, status: int, body: dict[str, Any], retry_after: int = 0) -> None:
    headers = [(b"content-type", b"application/json")]
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
