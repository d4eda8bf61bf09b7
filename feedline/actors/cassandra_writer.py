"""Apply planned events to Cassandra in batches, then pass them to cache invalidation.

The writer takes whatever WriteBatch messages are waiting, up to a size bound, and
flushes when the batch is full or its inbox is empty: under light load every event goes
out at once (freshness), under heavy load batches grow by themselves (throughput).

A flush runs in two phases for every event in it: first the events' own mutations, then
their expansions (fan-out, backfill), which read the read model. Writing before reading
is what makes a follow and a concurrent shard see each other (see strategies/base.py).
The expansions' reads (and their re-checks) run side by side on a small thread pool.
Transient Cassandra errors (node down, timeouts) are retried until they pass: nothing is
acknowledged meanwhile and partitions pause on backpressure. Errors that say the write
itself is wrong are retried a bounded number of times, event by event, and then the
event goes to the dead letters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from feedline import cassandra
from feedline.actors.messages import (
    DeadLetter,
    Flush,
    InjectFailure,
    InvalidateBatch,
    Work,
    WriteBatch,
)
from feedline.actors.router import Router
from feedline.errors import DependencyUnavailable
from feedline.fanout import Expander, PreparedStatements
from feedline.settings import CassandraSettings, PipelineSettings
from feedline.strategies.base import Mutation
from feedline.supervisors import ChildLink, SupervisedActor

logger = logging.getLogger(__name__)

RESTART_AFTER_S = 20.0
APPLY_CHUNK = 5000  # mutations bound and in flight per step of a flush
T = TypeVar("T")
R = TypeVar("R")


class CassandraWriter(SupervisedActor):
    """Batch, apply and hand on events; the one place pipeline writes reach Cassandra."""

    def __init__(
        self,
        cassandra_settings: CassandraSettings,
        pipeline: PipelineSettings,
        invalidators: Router,
        dead_letters: Router,
        metrics: Any,
        *,
        link: ChildLink | None = None,
    ):
        super().__init__(link=link)
        self._cassandra_settings = cassandra_settings
        self._pipeline = pipeline
        self._invalidators = invalidators
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._cluster: Any = None
        self._session: Any = None
        self._statements: PreparedStatements | None = None
        self._expander: Expander | None = None
        self._batch: list[Work] = []
        self._processed = 0
        self._last_error: str | None = None
        self._flush_queued = False
        self._reads: ThreadPoolExecutor | None = None

    def on_start(self) -> None:
        # Expansions read before they write (followers, a followee's shards, re-checks);
        # the driver's reads are blocking, so a flush runs them side by side on this pool
        # instead of one round trip after another (which capped the writer's event rate).
        self._reads = ThreadPoolExecutor(
            max_workers=self._pipeline.read_concurrency, thread_name_prefix="writer-reads"
        )
        # Connect lazily (first flush) so a Cassandra outage does not fail the tree's start:
        # events wait, partitions pause, and health shows why.
        try:
            self._connect()
        except Exception as exc:
            if not cassandra.is_transient(exc):
                raise
            self._last_error = f"connect: {type(exc).__name__}"
            logger.warning("cassandra not reachable yet: %s", exc)

    def _connect(self) -> None:
        if self._session is not None:
            return
        self._cluster, self._session = cassandra.connect(self._cassandra_settings)
        self._statements = PreparedStatements(self._session)
        self._expander = Expander(self._session, self._statements, self._pipeline)

    def on_stop(self) -> None:
        if self._batch:
            self._flush()
        self._close()
        super().on_stop()

    def on_failure(self, *exc_info: Any) -> None:
        self._close()
        super().on_failure(*exc_info)

    def _close(self) -> None:
        if self._reads is not None:
            self._reads.shutdown(wait=False, cancel_futures=True)
        if self._cluster is not None:
            self._cluster.shutdown()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, WriteBatch):
            self._batch.extend(message.items)
            if len(self._batch) >= self._pipeline.batch_max_size or self.actor_inbox.empty():
                self._flush()
            elif not self._flush_queued:
                # What waits in the inbox may not be a WriteBatch (a health() call is
                # handled by pykka without on_receive): queue a Flush behind it, or the
                # batch would sit until the next WriteBatch (30 s resend when load stops).
                self._flush_queued = True
                self.actor_ref.tell(Flush())
        elif isinstance(message, Flush):
            self._flush_queued = False
            if self._batch:
                self._flush()
        elif isinstance(message, InjectFailure):
            raise RuntimeError(message.reason)
        return None

    def health(self) -> dict[str, Any]:
        return {
            "messages_processed": self._processed,
            "in_flight": len(self._batch) + self.actor_inbox.qsize(),
            "last_write_error": self._last_error,
        }

    # -- flushing --------------------------------------------------------------------

    def _flush(self) -> None:
        items, self._batch = self._batch, []
        started = time.monotonic()
        keys: set[str] = set()
        try:
            self._retry_transient(self._connect, "connect")
            self._apply([m for w in items for m in w.plan.mutations])
            keys |= self._expand_and_apply(items)
            done = items
        except Exception as exc:
            if cassandra.is_transient(exc):
                raise  # only reached if retries were interrupted; the supervisor restarts us
            logger.warning("batch of %d failed (%s); retrying event by event", len(items), exc)
            done, keys = self._isolate(items)
        self._metrics.batch_size.observe(len(items))
        self._metrics.write_latency.observe(time.monotonic() - started)
        self._processed += len(items)
        for w in done:
            keys.update(w.plan.invalidations)
        self._hand_on(done, keys)

    def _expand_and_apply(self, items: list[Work]) -> set[str]:
        """Run the items' expansions: read, write, then re-validate what was written."""
        expander = self._expander
        assert expander is not None
        expansions = [e for w in items for e in w.plan.expansions]
        expanded = self._side_by_side(
            lambda e: self._retry_transient(lambda: expander.expand(e), "read"), expansions
        )
        self._apply([m for x in expanded for m in x.mutations])
        rechecks = self._side_by_side(
            lambda x: self._retry_transient(x.recheck, "recheck"), expanded
        )
        self._apply([m for undo in rechecks for m in undo])
        return {k for x in expanded for k in x.keys}

    def _side_by_side(self, fn: Callable[[T], R], inputs: Sequence[T]) -> list[R]:
        """Return ``[fn(x) for x in inputs]``, run concurrently on the read pool."""
        if len(inputs) <= 1 or self._reads is None:
            return [fn(x) for x in inputs]
        return list(self._reads.map(fn, inputs))

    def _apply(self, mutations: list[Mutation]) -> None:
        """Write ``mutations``, binding and sending at most APPLY_CHUNK at a time.

        Bound statements cost far more memory than mutations: a shard with 100,000
        followers bound all at once took the process past 500 MiB. Every write is
        idempotent, so a chunk retried after a transient error repeats nothing harmful.
        """
        if not mutations:
            return
        assert self._statements is not None
        for i in range(0, len(mutations), APPLY_CHUNK):
            statements = cassandra.group_statements(
                mutations[i : i + APPLY_CHUNK], self._statements.bind
            )
            self._retry_transient(
                lambda s=statements: cassandra.execute_all(
                    self._session, s, self._pipeline.write_concurrency
                ),
                "write",
            )

    def _isolate(self, items: list[Work]) -> tuple[list[Work], set[str]]:
        """Apply events one by one so that one bad event cannot hold back the others."""
        done: list[Work] = []
        keys: set[str] = set()
        for w in items:
            for attempt in range(self._pipeline.max_retries):
                try:
                    self._apply(list(w.plan.mutations))
                    keys |= self._expand_and_apply([w])
                    done.append(w)
                    break
                except Exception as exc:
                    if cassandra.is_transient(exc):
                        raise
                    error = f"{type(exc).__name__}: {exc}"
                    if attempt == self._pipeline.max_retries - 1:
                        self._dead_letters.tell(
                            w.record.topic, DeadLetter(w.record, error, w.owner)
                        )
        return done, keys

    def _hand_on(self, done: list[Work], keys: set[str]) -> None:
        """Send the flush's keys and events together: acks go out only after the delete."""
        if done or keys:
            first = done[0].record if done else None
            key = (first.topic, first.partition) if first else None
            self._invalidators.tell(key, InvalidateBatch(frozenset(keys), tuple(done)))

    def _retry_transient(self, call: Any, what: str) -> Any:
        """Run ``call`` until it stops failing transiently (Cassandra down or slow).

        After RESTART_AFTER_S of failures it gives up by crashing: the supervisor starts a
        fresh writer with a fresh session (a driver session can stay stuck on a node that
        restarted), and the events it held are handed out again.
        """
        delay = 0.1
        failing_since: float | None = None
        while True:
            try:
                result = call()
                if self._last_error is not None:
                    logger.warning("cassandra is back")
                self._last_error = None
                self._metrics.dependency_up.labels("cassandra").set(1)
                return result
            except Exception as exc:
                if not cassandra.is_transient(exc):
                    raise
                self._last_error = f"{what}: {type(exc).__name__}"
                self._metrics.dependency_up.labels("cassandra").set(0)
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > RESTART_AFTER_S:
                    raise DependencyUnavailable("cassandra", self._last_error) from exc
                self._metrics.cassandra_retries.inc()
                logger.warning("cassandra %s failed (%s); retrying in %.1fs", what, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
