"""Remember which user a bearer token belongs to, in process, for a short time.

Without it every authenticated request costs a PostgreSQL round trip before any read
starts, which alone would keep cached feed reads far from the goal. A token's user never
changes and the API has no revocation, so a short TTL (``reads.token_cache_ttl_s``) only
bounds how long a token deleted by hand keeps working. Keyed by the token's SHA-256 (the
hash PostgreSQL stores), per worker process: no network hop at all on a hit. Only valid
tokens are remembered, so random tokens cannot fill the map; it is also size-bounded.
"""

from __future__ import annotations

import threading
import time


class TokenCache:
    """A bounded, thread-safe map token hash -> (user id, expiry)."""

    def __init__(self, ttl_s: float, max_size: int):
        self._ttl = ttl_s
        self._max = max_size
        self._entries: dict[bytes, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> int | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        user_id, expires = entry
        if time.monotonic() >= expires:
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return user_id

    def put(self, digest: bytes, user_id: int) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self._max:
                # Drop the oldest insertion (dicts keep insertion order): FIFO is enough here.
                self._entries.pop(next(iter(self._entries)))
            self._entries[digest] = (user_id, time.monotonic() + self._ttl)
