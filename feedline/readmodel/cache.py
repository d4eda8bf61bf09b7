"""Talk to Redis for the read path: batched gets, leases against stampedes, a circuit breaker.

Values are bytes with a one-byte kind (``formats``): ``V`` + payload (a cached value), ``N``
(a negative entry: "no such id", short TTL) or ``L`` + token (a lease: someone is loading
this key).

A miss takes a *lease* on the key itself (``SET NX PX``, in the same Lua call that saw it
missing): exactly one reader loads from Cassandra, the others wait a few ms for its value
and only then load for themselves (without writing). The loader writes back with a
compare-and-set on its lease, so when the pipeline invalidates the key meanwhile (``DEL``
removes the lease too), a value read before the change is never cached after it: the next
read loads afresh. These are memcache-style leases (Nishtala et al., NSDI 2013).

Lookups check this worker's in-process copy first (``near_cache``: kept honest by Redis
client tracking), so a hot page makes no round trip at all; only what it lacks goes to
the lease script.

Redis is a cache: any Redis error opens a breaker and the read carries on from Cassandra.
While the breaker is open, requests skip Redis entirely (zero cost); after a backoff
(doubling, capped) one request probes it again, so a dead Redis costs one short socket
timeout per backoff period, not one per request, and recovery needs nobody.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Sequence

import redis
from prometheus_client import Counter, Gauge
from redis.backoff import NoBackoff
from redis.retry import Retry

from feedline.breaker import Breaker
from feedline.readmodel.formats import LEASE
from feedline.readmodel.near_cache import NEAR, NearCache
from feedline.settings import ReadSettings

logger = logging.getLogger(__name__)

NEAR_HIT, NEAR_MISS = NEAR.labels("hit"), NEAR.labels("miss")

LOOKUPS = Counter("feedline_cache_lookups", "Read-path cache lookups", ["kind", "result"])
REDIS_ERRORS = Counter("feedline_cache_redis_errors", "Redis calls that failed on the read path")
BYPASSED = Counter(
    "feedline_cache_bypassed", "Reads served without Redis (breaker open or Redis failing)"
)
REDIS_UP = Gauge(
    "feedline_cache_redis_up", "1 if this worker's Redis breaker is closed", multiprocess_mode="min"
)

# Per key: the value if there is one, else take a lease and answer "" (you are the loader).
_LEASE = """
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v then out[i] = v else
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
    out[i] = ''
  end
end
return out
"""
# Per key: write value ARGV[2i] with TTL ARGV[2i+1] ms only if our lease ARGV[1] is still there.
_FILL = """
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then
    redis.call('SET', k, ARGV[2 * i], 'PX', ARGV[2 * i + 1])
    n = n + 1
  end
end
return n
"""


def _redis_state(failing: bool, exc: BaseException | None) -> None:
    """Log and gauge the read cache's Redis going down or coming back."""
    if failing:
        logger.warning("redis failed (%s); reads go to Cassandra until it is back", exc)
    else:
        logger.info("redis is back; the read cache is in use again")
    REDIS_UP.set(0 if failing else 1)


class Cache:
    """The read path's Redis client; every method degrades to "nothing cached" on failure."""

    def __init__(self, url: str, reads: ReadSettings):
        self._url = url
        self._reads = reads
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self.breaker = Breaker(reads.redis_backoff_s, reads.redis_backoff_max_s, _redis_state)
        REDIS_UP.set(1)
        self.near = NearCache(
            url,
            reads.near_cache_size,
            reads.near_cache_pages,
            reads.near_cache_max_age_s,
            reads.redis_timeout_s,
        )
        self._lease_script = self._fill_script = None

    def _redis(self) -> redis.Redis:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    t = self._reads.redis_timeout_s
                    client = redis.Redis.from_url(
                        self._url,
                        socket_timeout=t,
                        socket_connect_timeout=t,
                        retry=Retry(NoBackoff(), 0),
                    )
                    self._lease_script = client.register_script(_LEASE)
                    self._fill_script = client.register_script(_FILL)
                    self._client = client
        return self._client

    def _call(self, fn, *args):
        if not self.breaker.allow():
            BYPASSED.inc()
            return None
        try:
            result = fn(*args)
        except redis.RedisError as exc:
            REDIS_ERRORS.inc()
            BYPASSED.inc()
            self.breaker.failure(exc)
            self.near.reset()  # no copies of a Redis that fails: reads go to Cassandra
            return None
        self.breaker.success()
        return result

    def get_many(self, keys: Sequence[str]) -> list[bytes | None] | None:
        """Return the raw entries (one MGET), or None when Redis is unavailable."""
        if not keys:
            return []
        return self._call(lambda: self._redis().mget(keys))

    def copies(self) -> NearCache | None:
        """This worker's near cache, or None while Redis fails (reads go to Cassandra)."""
        return None if self.breaker.failing or not self.near.enabled else self.near

    def lease(self, keys: Sequence[str]) -> tuple[bytes, list[bytes]] | None:
        """Take leases on the missing ``keys``: (our lease value, per key "" or its entry).

        Keys this worker holds a copy of are answered from it; only the rest go to Redis.
        """
        token = LEASE + secrets.token_hex(8).encode()
        copies = self.copies()
        near = None if copies is None else copies.get(keys)
        if near is None:
            return self._lease(token, keys)
        generation, entries = near
        missing = [i for i, entry in enumerate(entries) if entry is None]
        NEAR_HIT.inc(len(keys) - len(missing))
        if not missing:
            return token, entries
        NEAR_MISS.inc(len(missing))
        asked = [keys[i] for i in missing]
        leased = self._lease(token, asked)
        if leased is None:
            return None
        found = leased[1]
        self.near.keep(generation, asked, found)
        for i, entry in zip(missing, found, strict=True):
            entries[i] = entry
        return token, entries

    def _lease(self, token: bytes, keys: Sequence[str]) -> tuple[bytes, list[bytes]] | None:
        def run() -> list[bytes]:
            self._redis()
            return self._lease_script(keys=list(keys), args=[token, self._reads.lease_ms])

        found = self._call(run)
        return None if found is None else (token, found)

    def fill(self, token: bytes, entries: Sequence[tuple[str, bytes, int]]) -> None:
        """Write ``(key, entry, ttl_s)`` where our lease ``token`` still holds the key."""
        if not entries:
            return
        args: list[bytes | int] = [token]
        for _, entry, ttl_s in entries:
            args += [entry, ttl_s * 1000]

        def run() -> int:
            self._redis()
            return self._fill_script(keys=[k for k, _, _ in entries], args=args)

        self._call(run)

    def wait_for(self, keys: Sequence[str]) -> list[bytes | None]:
        """Poll briefly for keys another reader is loading; None where still not loaded."""
        found: list[bytes | None] = [None] * len(keys)
        pending = list(range(len(keys)))
        budget = self._reads.lease_wait_ms / 1000
        pause = 0.001
        while pending and budget > 0:
            time.sleep(pause)
            budget -= pause
            pause = min(pause * 2, budget) if budget > 0 else pause
            got = self.get_many([keys[i] for i in pending])
            if got is None:
                break
            still = []
            for i, entry in zip(pending, got, strict=True):
                if entry is None or entry.startswith(LEASE):
                    still.append(i)
                else:
                    found[i] = entry
            pending = still
        return found

    def delete(self, *keys: str) -> None:
        self._call(lambda: self._redis().delete(*keys))

    def ping(self) -> None:
        """Probe Redis for /health (raises when it is down); also closes the breaker."""
        try:
            self._redis().ping()
        except redis.RedisError as exc:
            self.breaker.failure(exc)
            raise
        self.breaker.success()

    def close(self) -> None:
        self.near.close()
        if self._client is not None:
            self._client.close()
