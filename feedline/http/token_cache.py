"""Remember which user a bearer token belongs to, in process, for a short time.

Without it every authenticated request costs a PostgreSQL round trip before any read
starts (~0.12 ms of web CPU and ~0.55 ms wall here), which alone would keep cached feed
reads far from the goal. Keyed by the token's SHA-256 (the hash PostgreSQL stores), per
worker process: no network hop at all on a hit. Only valid tokens are remembered, so
random tokens cannot fill the map; it is also size-bounded.

Tokens are revoked (log out, account deletion) and expire, and a revoked or expired token
must be refused by every worker within ``bound_s`` (1 s):

- expiry: an entry never outlives its token's ``expires_at`` (passed to :meth:`put`);
- revocation: the revoking worker drops its copy and broadcasts the revocation
  (:mod:`feedline.http.revocations`); the others drop theirs when it arrives. An entry
  lives ``ttl_s`` (60 s) only while the broadcast is confirmed working and was already
  listening when the entry's lookup began; otherwise it is served only within ``bound_s``
  of that lookup's start. Without a broadcast (``revocations=None``) that is the only life.
- a revocation applied *while* a lookup is in flight (the lookup read the row before the
  revoking commit, the drop found nothing to drop, then the lookup stores its result):
  every drop bumps a generation; a lookup passes the generation it started under to
  :meth:`put`, and an entry whose lookup overlapped any drop lives only ``bound_s``.
"""

from __future__ import annotations

import threading
import time

from feedline.http.revocations import Revocations


class TokenCache:
    """A bounded, thread-safe map token hash -> (user id, lookup start, expiry)."""

    def __init__(
        self,
        ttl_s: float,
        max_size: int,
        bound_s: float = 1.0,
        revocations: Revocations | None = None,
    ):
        self._ttl = ttl_s
        self._bound = min(bound_s, ttl_s)
        self._max = max_size
        self._revocations = revocations
        # digest -> (user id, lookup start, expiry, trusted beyond bound_s)
        self._entries: dict[bytes, tuple[int, float, float, bool]] = {}
        self._generation = 0  # bumped by every drop (see the module docstring)
        self._lock = threading.Lock()
        if revocations is not None:
            revocations.listen(self.drop, self.drop_user)

    def get(self, digest: bytes) -> int | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        user_id, since, expires, trusted = entry
        now = time.monotonic()
        if now >= expires:
            with self._lock:
                self._entries.pop(digest, None)
            return None
        if now - since >= self._bound and not (trusted and self._covered(since)):
            return None  # kept: it is good again once the broadcast is confirmed
        return user_id

    def generation(self) -> int:
        """Return the drop generation; take it before a lookup and pass it to :meth:`put`."""
        return self._generation

    def put(
        self,
        digest: bytes,
        user_id: int,
        since: float | None = None,
        valid_s: float = 1e12,
        generation: int | None = None,
    ) -> None:
        """Remember ``digest`` -> ``user_id``, looked up at ``since`` (monotonic, default now)
        under drop ``generation``, for a token that expires ``valid_s`` after that."""
        if self._ttl <= 0:
            return
        if self._revocations is not None:
            self._revocations.start()  # listen from the first entry on (in the worker)
        start = time.monotonic() if since is None else since
        expires = start + min(self._ttl, valid_s)
        with self._lock:
            # A drop since the lookup began may have been this token's revocation, applied
            # before this entry existed: then only the short bound protects it.
            trusted = generation is not None and generation == self._generation
            if len(self._entries) >= self._max:
                # Drop the oldest insertion (dicts keep insertion order): FIFO is enough here.
                self._entries.pop(next(iter(self._entries)))
            self._entries[digest] = (user_id, start, expires, trusted)

    def revoke(self, digest: bytes) -> None:
        """Forget a token this worker revoked, and tell the other workers."""
        self.drop(digest)
        if self._revocations is not None:
            self._revocations.publish_token(digest)

    def revoke_user(self, user_id: int) -> None:
        """Forget every token of an account this worker deleted, and tell the others."""
        self.drop_user(user_id)
        if self._revocations is not None:
            self._revocations.publish_user(user_id)

    def drop(self, digest: bytes) -> None:
        with self._lock:
            self._generation += 1
            self._entries.pop(digest, None)

    def drop_user(self, user_id: int) -> None:
        with self._lock:
            self._generation += 1
            for digest in [d for d, (u, *_) in self._entries.items() if u == user_id]:
                del self._entries[digest]

    def _covered(self, since: float) -> bool:
        return self._revocations is not None and self._revocations.covers(since)
