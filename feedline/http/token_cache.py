"""Remember which user a bearer token belongs to, in process, for a short time.

Without it every authenticated request costs a PostgreSQL round trip before any read
starts, which alone would keep cached feed reads far from the goal. Tokens can be revoked
(log out, account deletion) and expire, and another worker's copy is not told: the TTL
(``reads.token_cache_ttl_s``, 1 s) is therefore how long a revoked or expired token can
still pass in a worker that cached it, measured from the start of the lookup that filled
the entry. The worker that revokes drops its own copy at once. Keyed by the token's
SHA-256 (the hash PostgreSQL stores), per worker process: no network hop at all on a hit.
Only valid tokens are remembered, so random tokens cannot fill the map; it is also
size-bounded.
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

    def put(self, digest: bytes, user_id: int, since: float | None = None) -> None:
        """Remember ``digest`` -> ``user_id`` until ``since`` (monotonic, default now) + TTL."""
        if self._ttl <= 0:
            return
        start = time.monotonic() if since is None else since
        with self._lock:
            if len(self._entries) >= self._max:
                # Drop the oldest insertion (dicts keep insertion order): FIFO is enough here.
                self._entries.pop(next(iter(self._entries)))
            self._entries[digest] = (user_id, start + self._ttl)

    def drop(self, digest: bytes) -> None:
        """Forget one token (this worker just revoked it)."""
        with self._lock:
            self._entries.pop(digest, None)

    def drop_user(self, user_id: int) -> None:
        """Forget every token of ``user_id`` (this worker just deleted the account)."""
        with self._lock:
            for digest in [d for d, (u, _) in self._entries.items() if u == user_id]:
                del self._entries[digest]
