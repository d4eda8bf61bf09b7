"""Drop the Redis entries a change made stale, tell live streams, then acknowledge the events.

The feed notices of a flush's finished events (``feedline.notices``) go out in the same
round trip as its deletes, after them: a stream that re-reads on a notice sees the change.

Redis is a cache: being down must neither lose events nor stall the pipeline. A failed
delete is retried a few times; after that its keys (and notices) are remembered as pending
and the events are acknowledged anyway. Pending keys are retried about once a second on a timer
(not only when the next batch comes, which on a quiet partition may be never) and with
every batch, and deleted as soon as Redis answers again. They live only in this actor's
memory: if the process dies first, the entries they name stay stale until their TTL
runs out (the read path never caches without one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

import redis

from feedline import notices
from feedline.actors.messages import Done, InjectFailure, InvalidateBatch, Tick
from feedline.actors.router import tell_quietly
from feedline.supervisors import ChildLink, SupervisedActor

logger = logging.getLogger(__name__)

RETRY_PENDING_S = 1.0  # while keys are pending: how often to try Redis again
# Distinct notices kept while Redis is away; beyond, one ``resync`` stands for them all.
MAX_PENDING_NOTICES = 10_000


class CacheInvalidator(SupervisedActor):
    """Delete stale cache keys idempotently; defer them while Redis is down."""

    def __init__(
        self,
        redis_url: str,
        metrics: Any,
        retries: int = 3,
        backoff_s: float = 0.05,
        *,
        link: ChildLink | None = None,
    ):
        super().__init__(link=link)
        self._redis_url = redis_url
        self._metrics = metrics
        self._retries = retries
        self._backoff_s = backoff_s
        self._client: redis.Redis | None = None
        self._pending: set[str] = set()
        self._pending_notices: list[notices.Notice] = []
        self._processed = 0
        self._redis_up = True
        self._next_probe = 0.0
        self._timer: threading.Timer | None = None

    def on_start(self) -> None:
        self._client = redis.Redis.from_url(
            self._redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )

    def on_stop(self) -> None:
        self._cancel_retry()
        try:
            if self._client is not None:
                self._client.close()
        finally:
            super().on_stop()

    def on_failure(self, *exc_info: Any) -> None:
        try:
            super().on_failure(*exc_info)
        finally:
            self._cancel_retry()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, InvalidateBatch):
            self._invalidate(message)
        elif isinstance(message, Tick):
            self._retry_pending()
        elif isinstance(message, InjectFailure):
            raise RuntimeError(message.reason)
        return None

    def health(self) -> dict[str, Any]:
        return {
            "messages_processed": self._processed,
            "in_flight": self.actor_inbox.qsize(),
            "redis_up": self._redis_up,
            "pending_invalidations": len(self._pending),
            "pending_notices": len(self._pending_notices),
        }

    def _invalidate(self, batch: InvalidateBatch) -> None:
        keys = set(batch.keys)
        if self._pending:
            keys |= self._pending
        told = [n for w in batch.items for n in w.plan.notices]
        if self._pending_notices:
            told = self._pending_notices + told
        if (keys or told) and self._delete(keys, told):
            self._pending.clear()
            self._pending_notices = []
        elif keys or told:
            self._pending |= keys
            pending = list(dict.fromkeys(told))
            if len(pending) > MAX_PENDING_NOTICES:
                pending = [notices.Resync()]  # every stream re-reads: nothing is missed
            self._pending_notices = pending
            self._metrics.redis_failures.inc(len(batch.keys))
            self._schedule_retry()
        self._ack(batch)

    def _retry_pending(self) -> None:
        """Try the deferred keys again (the timer's Tick); re-arm while Redis is away."""
        self._timer = None
        self._next_probe = 0.0  # this timer is the probe: try Redis now
        if not (self._pending or self._pending_notices):
            return
        if self._delete(set(self._pending), self._pending_notices):
            logger.info("redis is back: deleted %d deferred keys", len(self._pending))
            self._pending.clear()
            self._pending_notices = []
        else:
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        """Arm one timer (if none is armed) that tells this actor to retry the pending keys."""
        if self._timer is not None:
            return
        self._timer = threading.Timer(RETRY_PENDING_S, self._tell_self_tick)
        self._timer.daemon = True
        self._timer.start()

    def _tell_self_tick(self) -> None:
        tell_quietly(self.actor_ref, Tick())

    def _cancel_retry(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _delete(self, keys: set[str], told: list[notices.Notice]) -> bool:
        """Delete keys, then publish notices (one round trip), with bounded retries; while
        Redis is down, probe once a second. A retry after a failure mid-way repeats both:
        an UNLINK and a notice are idempotent."""
        assert self._client is not None
        if not self._redis_up and time.monotonic() < self._next_probe:
            return False
        retries = self._retries if self._redis_up else 1
        for attempt in range(retries):
            try:
                if not told:
                    self._client.unlink(*keys)
                else:
                    pipe = self._client.pipeline(transaction=False)
                    if keys:
                        pipe.unlink(*keys)
                    for message in notices.messages(told):
                        pipe.publish(notices.CHANNEL, message)
                    pipe.execute()
                self._set_up(True)
                return True
            except redis.RedisError as exc:
                if attempt == retries - 1:
                    logger.warning(
                        "redis invalidation failed, deferring %d keys: %s", len(keys), exc
                    )
                time.sleep(self._backoff_s * (2**attempt))
        self._set_up(False)
        self._next_probe = time.monotonic() + 1.0
        return False

    def _set_up(self, up: bool) -> None:
        if up != self._redis_up:
            logger.warning("redis is %s", "back" if up else "down")
        self._redis_up = up
        self._metrics.dependency_up.labels("redis").set(1 if up else 0)

    def _ack(self, batch: InvalidateBatch) -> None:
        by_owner: dict[Any, list[int]] = defaultdict(list)
        for item in batch.items:
            by_owner[item.owner].append(item.record.offset)
        for owner, offsets in by_owner.items():
            tell_quietly(owner, Done(tuple(offsets)))
        self._processed += len(batch.items)
        self._metrics.events_done.inc(len(batch.items))
