"""A per-worker copy of hot Redis entries, kept honest by Redis client tracking.

Why: a feed page served from Redis costs two round trips (the window, then its shards and
profiles), and with redis-py each costs ~100 µs of the worker's CPU: most of a cache hit.
Keeping the entries a worker has just read in its own memory makes a hot page cost no
round trip at all, provided a stale copy can never outlive the pipeline's invalidation.

How it stays correct:

- One connection per worker turns on client tracking in broadcast mode for every key under
  ``cache_keys.PREFIX`` and redirects the invalidations to itself, subscribed to
  ``__redis__:invalidate`` (RESP2, so this works on any Redis >= 6). Every change to such a
  key (a DEL by the pipeline, a fill, an expiry, an eviction, a FLUSHDB) sends its name.
- Those messages are *drained before every lookup*. Redis sends an invalidation in the same
  event-loop turn as its reply to the DEL, so once the pipeline has seen its DEL succeed,
  the message is already in this socket and the next read cannot serve the old copy.
- A value fetched from Redis is kept only if no invalidation was drained while it was in
  flight (a generation count), so a value read before a change is never kept after it.
- If the connection drops (Redis restarted, this client killed or over its output buffer
  limit) or Redis fails for the read path, the copy is emptied and only used again once
  tracking is back on. A worker idle for ``IDLE_RESET_S``, or finding more than
  ``MAX_DRAIN`` invalidations waiting (a mass invalidation), starts afresh rather than
  parse the backlog on one request (that cost tens of ms at the tail).
- Entries also age out after ``max_age_s``: a bound for anything unforeseen, such as a key
  that expired in Redis but has not been deleted (and so announced) yet.

Only values and negative entries are copied, never leases. Eviction is first-in first-out
(cheaper than LRU on every hit; hot keys come back on their next read).

*Derived* entries (rendered pages) are kept the same way, under the generation rule, with
the keys they were built from: an invalidation of any of those keys drops them too. So a
hot page costs one dictionary lookup, and is never older than the entries it shows.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Sequence

import redis
from prometheus_client import Counter, Gauge
from redis.connection import Connection

from feedline.cache_keys import PREFIX
from feedline.readmodel.formats import NEGATIVE, VALUE

logger = logging.getLogger(__name__)

CHANNEL = b"__redis__:invalidate"
KEEP = (VALUE, NEGATIVE)  # entry kinds worth copying: values and negative entries
IDLE_RESET_S = 2.0
MAX_DRAIN = 200  # more invalidations than this waiting: drop everything, reconnect
RETRY_S = 1.0  # after a failed (re)connect, look up nothing here for this long

NEAR = Counter("feedline_near_cache", "In-process cache lookups by result", ["result"])
INVALIDATIONS = Counter("feedline_near_cache_invalidations", "Invalidation messages applied")
LIVE = Gauge(
    "feedline_near_cache_live",
    "1 if this worker's in-process cache is tracking Redis",
    multiprocess_mode="min",
)


class NearCache:
    """Entries copied from Redis, dropped when Redis says the key changed; see module doc."""

    def __init__(self, url: str, size: int, pages: int, max_age_s: float, timeout_s: float):
        # RESP2: the invalidations arrive as plain pub/sub replies. The pool only makes
        # connections (one at a time), it never hands them out.
        self._pool = redis.Redis.from_url(
            url, protocol=2, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        ).connection_pool
        self._size = size
        self._max_age = max_age_s
        self._entries: dict[str, tuple[bytes, float]] = {}
        self._pages = pages
        self._derived: dict[str, tuple[bytes, float]] = {}
        self._dependents: dict[str, set[str]] = {}  # key -> names of derived entries
        self._conn: Connection | None = None
        self.client_id: int | None = None  # of the tracking connection, while connected
        self._poll = select.poll()
        self._generation = 0
        self._drained_at = 0.0
        self._retry_at = 0.0
        self._lock = threading.Lock()  # gthread workers share one copy

    @property
    def enabled(self) -> bool:
        return self._size > 0 or self._pages > 0

    def get(self, keys: Sequence[str]) -> tuple[int, list[bytes | None]] | None:
        """Return (generation, per key its entry or None), or None when not tracking.

        Pass the generation to ``keep`` with whatever is then fetched from Redis.
        """
        with self._lock:
            if not self._sync():
                return None
            now = time.monotonic()
            found: list[bytes | None] = []
            for key in keys:
                held = self._entries.get(key)
                found.append(held[0] if held is not None and held[1] > now else None)
            return self._generation, found

    def keep(self, generation: int, keys: Sequence[str], entries: Sequence[bytes | None]) -> None:
        """Copy entries fetched from Redis, unless a key changed since ``generation``."""
        with self._lock:
            if not self._sync() or generation != self._generation:
                return
            expires = time.monotonic() + self._max_age
            for key, entry in zip(keys, entries, strict=True):
                if entry is not None and entry[:1] in KEEP:
                    self._entries.pop(key, None)
                    self._entries[key] = (entry, expires)
            while len(self._entries) > self._size:
                del self._entries[next(iter(self._entries))]

    def derived(self, name: str) -> tuple[int, bytes | None] | None:
        """Return (generation, the derived entry or None), or None when not tracking.

        Pass the generation to ``keep_derived`` with what is then built on a miss.
        """
        with self._lock:
            if not self._sync():
                return None
            held = self._derived.get(name)
            alive = held is not None and held[1] > time.monotonic()
            return self._generation, held[0] if alive else None

    def keep_derived(
        self, generation: int, name: str, value: bytes, depends_on: Sequence[str]
    ) -> None:
        """Keep ``value``, built from ``depends_on`` at ``generation``, until one changes.

        When full (or when the reverse index has grown with names long gone), everything
        derived is dropped at once: it is rebuilt on the next read of each page.
        """
        with self._lock:
            if not self._sync() or generation != self._generation:
                return
            if len(self._derived) >= self._pages or len(self._dependents) > 64 * self._pages:
                self._derived.clear()
                self._dependents.clear()
            self._derived[name] = (value, time.monotonic() + self._max_age)
            for key in depends_on:
                self._dependents.setdefault(key, set()).add(name)

    def reset(self) -> None:
        """Forget everything and disconnect; tracking restarts on a later lookup."""
        with self._lock:
            self._reset()

    def close(self) -> None:
        self.reset()

    # -- connection ------------------------------------------------------------------------

    def _sync(self) -> bool:
        """Apply every invalidation received so far; False when not tracking (copy empty)."""
        now = time.monotonic()
        if self._conn is not None and now - self._drained_at > IDLE_RESET_S:
            self._reset()
        if self._conn is None and not self._connect(now):
            return False
        try:
            # Cheap readiness check first: after each drain redis-py's buffer is empty.
            if self._poll.poll(0):
                applied = 0
                while self._conn.can_read(timeout=0):
                    if applied == MAX_DRAIN:  # a burst: starting afresh is cheaper
                        self._reset()
                        return self._connect(now)
                    self._apply(self._conn.read_response())
                    applied += 1
        except (redis.RedisError, OSError) as exc:
            logger.info("near cache: tracking connection lost (%s); starting afresh", exc)
            self._reset()
            self._retry_at = now + RETRY_S
            return False
        self._drained_at = now
        return True

    def _connect(self, now: float) -> bool:
        if not self.enabled or now < self._retry_at:
            return False
        conn = self._pool.make_connection()
        try:
            conn.connect()
            conn.send_command("CLIENT", "ID")
            client_id = conn.read_response()
            conn.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", "PREFIX", PREFIX
            )
            conn.read_response()
            conn.send_command("SUBSCRIBE", CHANNEL)
            conn.read_response()
        except (redis.RedisError, OSError) as exc:
            logger.info("near cache: cannot track Redis (%s); retrying in %.0f s", exc, RETRY_S)
            conn.disconnect()
            self._retry_at = now + RETRY_S
            return False
        self._conn = conn
        self.client_id = client_id
        self._poll = select.poll()
        self._poll.register(conn._sock, select.POLLIN)  # the socket redis-py reads from
        self._drained_at = now
        LIVE.set(1)
        return True

    def _apply(self, message: list) -> None:
        if message[0] != b"message" or message[1] != CHANNEL:
            return  # a subscribe confirmation or a pong
        self._generation += 1
        INVALIDATIONS.inc()
        keys = message[2]
        if keys is None:  # FLUSHDB / FLUSHALL
            self._clear()
            return
        for raw in keys:
            key = raw.decode(errors="surrogateescape")  # keys are ours, but never crash
            self._entries.pop(key, None)
            for name in self._dependents.pop(key, ()):
                self._derived.pop(name, None)

    def _clear(self) -> None:
        self._entries.clear()
        self._derived.clear()
        self._dependents.clear()

    def _reset(self) -> None:
        self._clear()
        self._generation += 1
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None
            self.client_id = None
        LIVE.set(0)
