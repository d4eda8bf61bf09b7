"""Tell every web worker at once that tokens were revoked, over Redis pub/sub.

Why: each worker caches token -> user (:mod:`feedline.http.token_cache`) so that a request
costs no PostgreSQL lookup; a revoked token must still be refused by every worker within
``bound_s`` (1 s). Broadcasting the revocation lets the cache keep entries for a minute
while that holds; without a working broadcast the cache falls back to ``bound_s`` itself.

How the bound holds whatever fails:

- The revoking worker commits the revocation in PostgreSQL, drops its own copy, then
  publishes ``t:<sha256 hex>`` (one token) or ``u:<user id>`` (every token of a deleted
  account) on ``CHANNEL``, retrying for up to ``bound_s``.
- Each worker has one listener thread subscribed to ``CHANNEL``, which applies messages in
  order and sends a ``PING`` every ``ping_s``. Redis answers a ping on the subscribed
  connection after every message published before it, so when a pong arrives, every
  revocation published before that ping was sent has been applied: the cache is
  *confirmed* up to the ping's send time.
- :meth:`Revocations.covers` tells whether an entry whose lookup began at ``since`` can be
  trusted past ``bound_s``: only if the current subscription was already active then (no
  revocation published since can have been missed: a message sent while no subscription
  was active, before the thread started or during a reconnection, is lost) and the last
  confirmation is younger than ``bound_s - ping_s``. Otherwise (Redis down, the
  subscription lost or slow) the cache serves an entry only within ``bound_s`` of its
  lookup's start. So a revocation published at time T is either applied, or by T + bound_s
  every entry still served was looked up after T, in PostgreSQL, where the token is gone.

What this does not cover: Redis answering the listeners but refusing the publisher for
longer than ``bound_s`` (logged as an error); other workers may then keep the token for up
to the cache's long TTL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

logger = logging.getLogger(__name__)

CHANNEL = "fl:revoked"
PING = b"revocations"


class Revocations:
    """Publish revocations and apply everyone's, with a confirmation clock; see module doc."""

    def __init__(
        self,
        url: str,
        bound_s: float = 1.0,
        ping_s: float = 0.2,
        timeout_s: float = 0.2,
        client_name: str = "feedline-revocations",
    ):
        self._url = url
        self._name = client_name
        self._bound = bound_s
        self._ping = ping_s
        self._timeout = timeout_s
        self._client: redis.Redis | None = None
        self._confirmed = float("-inf")  # monotonic send time of the last answered ping
        self._since = float("inf")  # when the current subscription was confirmed active
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._on_token: Callable[[bytes], None] = lambda digest: None
        self._on_user: Callable[[int], None] = lambda user_id: None

    def listen(self, on_token: Callable[[bytes], None], on_user: Callable[[int], None]) -> None:
        """Set what to do with each revocation received (the token cache's drops)."""
        self._on_token, self._on_user = on_token, on_user

    def covers(self, since: float) -> bool:
        """Tell whether a lookup begun at ``since`` would have been told of every revocation
        published after it and over ``bound_s`` ago (see the module doc)."""
        self.start()
        return (
            since >= self._since and time.monotonic() - self._confirmed < self._bound - self._ping
        )

    def publish_token(self, digest: bytes) -> None:
        self._publish(b"t:" + digest.hex().encode())

    def publish_user(self, user_id: int) -> None:
        self._publish(f"u:{user_id}".encode())

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self._timeout + self._ping)

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                client_name=self._name,
            )
        return self._client

    def _publish(self, message: bytes) -> None:
        deadline = time.monotonic() + self._bound
        while True:
            try:
                self._redis().publish(CHANNEL, message)
                return
            except redis.RedisError as exc:
                if time.monotonic() + self._timeout > deadline:
                    logger.error("revocation not broadcast (%s): %s", type(exc).__name__, exc)
                    return
                time.sleep(0.05)

    def start(self) -> None:
        """Start the listener thread once, in the process that uses it (after the fork)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="token-revocations", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        logged = False  # one line per loss, not one per retry while Redis stays down
        while not self._stop.is_set():
            try:
                self._listen()
            except (redis.RedisError, OSError) as exc:
                if self._since != float("inf"):  # it was listening: a new loss
                    logged = False
                if not logged:
                    logger.warning(
                        "revocation listener: Redis unavailable (%s); tokens are cached "
                        "for %g s until it is back",
                        type(exc).__name__,
                        self._bound,
                    )
                    logged = True
            finally:
                self._since = float("inf")  # messages sent from now on are lost
            self._stop.wait(self._ping)

    def _listen(self) -> None:
        pubsub = self._redis().pubsub()
        try:
            pubsub.subscribe(CHANNEL)
            pending: list[float] = []  # send times of the pings not answered yet
            next_ping = 0.0
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_ping:
                    pubsub.ping(PING)
                    pending.append(now)
                    next_ping = now + self._ping
                message = pubsub.get_message(timeout=max(0.0, next_ping - time.monotonic()))
                if message is not None:
                    self._apply(message, pending)
        finally:
            pubsub.close()

    def _apply(self, message: dict, pending: list[float]) -> None:
        kind, data = message.get("type"), message.get("data")
        if kind == "subscribe":
            self._since = time.monotonic()
        elif kind == "pong" and data == PING and pending:
            self._confirmed = pending.pop(0)
        elif kind == "message" and isinstance(data, bytes):
            head, _, value = data.partition(b":")
            try:
                if head == b"t":
                    self._on_token(bytes.fromhex(value.decode()))
                elif head == b"u":
                    self._on_user(int(value))
            except ValueError:
                logger.warning("ignored a malformed revocation message")
