"""Apply planned events to Cassandra in batches, then pass them to cache invalidation.

The writer takes whatever WriteBatch messages are waiting, up to a size bound, and
flushes when the batch is full or its inbox is empty: under light load every event goes
out at once (freshness), under heavy load batches grow by themselves (throughput).

A flush runs in two phases for every event in it: first the events' own mutations, then
their expansions (fan-out, backfill, unbackfill, purge), which read the read model.
Writing before reading is what makes a follow and a concurrent shard see each other (see
strategies/base.py). The expansions' reads (and their re-checks) run side by side on a
small thread pool. Each step runs all events together; a step that fails is redone
event by event, to find whose failure it was.

A big expansion (a fan-out to many followers, a purge, a large backfill or unbackfill)
comes in steps of at most ``expansion_chunk`` followers or rows (feedline/fanout.py). A
flush runs only the first step of each new event's expansions; an event with steps left
is *running*: the writer queues a Flush to itself, so whatever arrived meanwhile is
written first, and each later flush does the new events, hands them on, then does one
more step of every running event. So an ordinary event waits for at most one step of a
big one, never for all of it. A running event is acknowledged only after its last step;
if a step fails, the event is retried from its start (every write is idempotent).

What a failure means (nothing here is ever dead-lettered: only an event that cannot be
decoded or planned is poison, and that is the Adapter's call):

- Cassandra down (an error of ``cassandra.TRANSIENT``, and the cluster does not answer a
  probe either): the whole flush is retried in place with backoff and jitter, nothing is
  acknowledged, partitions pause on backpressure. After RESTART_AFTER_S the writer
  crashes so that a fresh session takes over (a driver session can stay stuck on a node
  that restarted); the supervisor restarts it and partition owners re-send its events.
  Not being connected at all is the same crash.
- Anything else that fails one event (a read timing out or failing on one huge
  partition, a WriteFailure, a statement Cassandra rejects, a bug in an expansion): that
  event alone is retried, with exponential backoff and jitter up to
  ``retry_backoff_max_s``, for ``retry_budget_s``; meanwhile the others go on. Then it is
  *parked*: still unacknowledged (its partition commits nothing past it), retried every
  ``parked_retry_s``, logged at ERROR, counted (``feedline_parked_events``) and named in
  ``/health/actors`` until it goes through.

Whatever happens, the cache keys of every write that was attempted are invalidated, and
an event is acknowledged (through the invalidators) only once all its writes, expansions
included, are done.
"""

from __future__ import annotations

import collections
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from feedline import cassandra
from feedline import statements as st
from feedline.actors.messages import Flush, InjectFailure, InvalidateBatch, Work, WriteBatch
from feedline.actors.router import Router, tell_quietly
from feedline.errors import DependencyUnavailable
from feedline.fanout import Expander, FeedTrims, PreparedStatements
from feedline.settings import CassandraSettings, PipelineSettings
from feedline.strategies.base import ModeCheck, Mutation
from feedline.supervisors import ChildLink, SupervisedActor
from feedline.supervisors.policy import call_later

logger = logging.getLogger(__name__)

RESTART_AFTER_S = 20.0  # of Cassandra not answering at all: crash for a fresh session
APPLY_CHUNK = 5000  # mutations bound and in flight per step of a flush
FIRST_RETRY_S = 0.5  # a failed event's first pause; doubles up to retry_backoff_max_s
PROBE_TIMEOUT_S = 5.0
PARKED_SHOWN = 20  # parked events named in health (all of them are counted)
T = TypeVar("T")
R = TypeVar("R")
EventId = tuple[str, int, int]  # topic, partition, offset
_TABLE_OF = {name: s.table for name, s in st.STATEMENTS.items()}  # statement -> table
Step = Callable[[], Any]  # expands one step of an expansion: a fanout.Expanded


@dataclass
class _Failing:
    """An event that failed, waiting for its next attempt."""

    work: Work  # the latest copy: a re-sent one may answer to a new partition owner
    since: float
    attempts: int = 0
    due: float = 0.0
    error: str = ""
    parked: bool = False


@dataclass
class _Running:
    """An event with expansion steps left: acknowledged only once none is left."""

    work: Work  # the latest copy, as for _Failing
    steps: list[Step]
    since: float


class CassandraWriter(SupervisedActor):
    """Batch, apply and hand on events; the one place pipeline writes reach Cassandra."""

    def __init__(
        self,
        cassandra_settings: CassandraSettings,
        pipeline: PipelineSettings,
        invalidators: Router,
        metrics: Any,
        *,
        link: ChildLink | None = None,
        feed_trims: FeedTrims | None = None,
    ):
        super().__init__(link=link)
        self._cassandra_settings = cassandra_settings
        self._pipeline = pipeline
        self._invalidators = invalidators
        self._metrics = metrics
        # Shared by the process's writers: one count per feed of the rows written since
        # its last trim (fanout.FeedTrims), whichever writer wrote them.
        self._feed_trims = feed_trims or FeedTrims.from_settings(pipeline)
        self._name = link.child_id if link is not None else "writer"
        self._cluster: Any = None
        self._session: Any = None
        self._statements: PreparedStatements | None = None
        self._expander: Expander | None = None
        self._replicas: Callable[[Any], Any] | None = None  # cassandra.replica_key
        self._batch: list[Work] = []
        self._failing: dict[EventId, _Failing] = {}
        self._running: dict[EventId, _Running] = {}
        self._processed = 0
        self._last_error: str | None = None
        self._flush_queued = False
        self._flush_again = False  # _take held back a mode check behind another one
        self._reads: ThreadPoolExecutor | None = None
        self._wake_at = 0.0
        self._timer: threading.Timer | None = None
        self._cluster_answered = False  # within the current write pass
        # Metric children looked up once (``labels()`` per flush took a lock and a key).
        self._parked_gauge = metrics.parked.labels(self._name)
        self._cassandra_up = metrics.dependency_up.labels("cassandra")

    def on_start(self) -> None:
        self._parked_gauge.set(0)
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
        """Open a session and prepare every statement; keep them only if all of it worked.

        A half-built connection (a session whose prepares timed out) is closed, never
        kept: the next attempt starts from scratch.
        """
        if self._session is not None:
            return
        cluster, session = cassandra.connect(self._cassandra_settings)
        try:
            statements = PreparedStatements(session)
            expander = Expander(
                session,
                statements,
                self._pipeline,
                self._feed_trims,
                reads=self._metrics.reads_by_statement,
            )
        except BaseException:
            cluster.shutdown()
            raise
        self._cluster, self._statements, self._expander = cluster, statements, expander
        self._replicas = cassandra.replica_key(session)
        self._session = session

    def on_stop(self) -> None:
        """Flush what is batched if Cassandra lets us, then close and report, whatever happens.

        A flush that fails here (Cassandra down) only leaves those events unacknowledged:
        their partition owners re-send them to the next writer.
        """
        try:
            if self._batch:
                self._flush()
        except Exception as exc:  # never skip the close and the report
            logger.warning("%s: %d events unflushed at stop: %r", self._name, len(self._batch), exc)
        finally:
            try:
                self._close()
            finally:
                super().on_stop()

    def on_failure(self, *exc_info: Any) -> None:
        """Report the crash first (pykka swallows errors here), then clean up."""
        try:
            super().on_failure(*exc_info)
        finally:
            self._close()

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        # Events still failing stay unacknowledged: their partition owners re-send them.
        self._parked_gauge.set(0)
        if self._reads is not None:
            self._reads.shutdown(wait=False, cancel_futures=True)
        if self._cluster is not None:
            self._cluster.shutdown()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, WriteBatch):
            self._batch.extend(message.items)
            self._linger()
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
            self._flush()
        elif isinstance(message, InjectFailure):
            raise RuntimeError(message.reason)
        return None

    def _linger(self) -> None:
        """Wait ``write_linger_s`` for more events if the batch is small and nothing waits.

        Most of a flush's CPU is per round trip, not per event (each round costs the
        driver a wake-up of its I/O thread and of ours, and hands on one InvalidateBatch):
        at a steady trickle, one event per flush pays all of it. Sleeping on the actor's
        thread is enough: whatever arrives meanwhile is in the inbox, and the caller then
        queues a Flush behind it. Under load the inbox is never empty: no wait.
        """
        linger = self._pipeline.write_linger_s
        if (
            linger > 0
            and not self._flush_queued
            and len(self._batch) < self._pipeline.batch_max_size
            and self.actor_inbox.empty()
        ):
            time.sleep(linger)

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        parked = [f for f in self._failing.values() if f.parked]
        return {
            "messages_processed": self._processed,
            "in_flight": len(self._batch)
            + self.actor_inbox.qsize()
            + len(self._failing.keys() | self._running.keys()),
            # events whose big expansion is under way, a step per flush (issue 16)
            "expanding": [
                f"{_where(r.work)} for {now - r.since:.0f} s"
                for r in list(self._running.values())[:PARKED_SHOWN]
            ],
            "last_write_error": self._last_error,
            "retrying": len(self._failing) - len(parked),
            "parked_events": len(parked),
            "parked": [
                f"{_where(f.work)} for {now - f.since:.0f} s ({f.attempts} attempts): {f.error}"
                for f in parked[:PARKED_SHOWN]
            ],
        }

    # -- flushing --------------------------------------------------------------------

    def _flush(self) -> None:
        """Write the new events and the failed ones now due, then one more step of each
        running event; hand on keys and acknowledgements after each of the two."""
        running = list(self._running.values())
        self._pass(self._take(), [])
        # Those that finished, failed or moved away meanwhile are no longer running.
        self._pass([], [r for r in running if self._running.get(_id(r.work)) is r])
        if (self._running or self._flush_again) and not self._flush_queued:
            # Behind whatever arrived meanwhile: that is written before the next step.
            self._flush_queued = True
            self.actor_ref.tell(Flush())
        self._wake_for_retries()

    def _pass(self, items: list[Work], running: list[_Running]) -> None:
        """Write ``items`` (first steps) and the next step of ``running``; hand them on."""
        works = [*items, *(r.work for r in running)]
        if not works:
            return
        started = time.monotonic()
        keys: set[str] = set()
        done: list[Work] = []
        failed: dict[EventId, str] = {}
        more: dict[EventId, list[Step]] = {}
        try:
            self._retry_transient(self._connect, "connect")
            failed, more = self._retry_transient(lambda: self._write(items, running, keys), "write")
            done = [w for w in works if _id(w) not in failed and _id(w) not in more]
        finally:
            # Also when we crash: whatever was attempted may have landed.
            self._hand_on(done, keys)
        now = time.monotonic()
        for w in works:
            steps = more.get(_id(w))
            if steps and _id(w) not in failed:
                was = self._running.get(_id(w))
                self._running[_id(w)] = _Running(w, steps, was.since if was else now)
            else:
                self._running.pop(_id(w), None)
        self._settle(works, failed)
        self._metrics.batch_size.observe(len(works))
        self._metrics.write_latency.observe(now - started)
        self._processed += len(done)

    def _take(self) -> list[Work]:
        """Return the new events plus the failed ones whose next attempt is due."""
        fresh: dict[EventId, Work] = {}
        for w in self._batch:
            waiting = self._failing.get(_id(w))
            running = self._running.get(_id(w))
            if running is not None:
                running.work = w  # a re-sent copy of a running event: answer its owner
            if waiting is not None:
                waiting.work = w  # a re-sent copy: keep the schedule, answer its owner
            elif running is None:
                fresh[_id(w)] = w
        self._batch = []
        for key, r in list(self._running.items()):
            if not r.work.owner.is_alive():
                del self._running[key]  # its new owner re-sends it, and it starts over
        now = time.monotonic()
        due = []
        for key, f in list(self._failing.items()):
            if not f.work.owner.is_alive():
                # Its partition moved or its owner restarted: the new owner re-reads it.
                del self._failing[key]
            elif f.due <= now and key not in self._running:
                due.append(f.work)
        candidates = [*fresh.values(), *due]
        ids = {_id(w) for w in candidates}
        # A failed mode check not due yet may not have written its decision: a later one
        # of the same author waits for it (its offset holds the partition back anyway).
        waiting = {
            a for k, f in self._failing.items() if k not in ids for a in _mode_authors(f.work)
        }
        taken, later = _one_mode_check_per_author(candidates, waiting)
        self._batch = later  # the next pass takes them, after this pass's decisions
        # Held behind another check of this pass: go again at once. Held behind a failed
        # one only: its retry timer wakes us (no spinning meanwhile).
        self._flush_again = any(not (_mode_authors(w) & waiting) for w in later)
        return taken

    def _write(
        self, items: list[Work], running: list[_Running], keys: set[str]
    ) -> tuple[dict[EventId, str], dict[EventId, list[Step]]]:
        """Apply the items' own mutations, then the first step of their expansions and the
        next step of the running events; return who failed (and why), and the steps each
        event has left.

        ``keys`` collects the cache keys of every write attempted. Raises
        DependencyUnavailable when the cluster itself is down (for the caller to wait out).
        """
        # _flush connected first; were we not, this would be a crash, never an event's fault
        assert self._expander is not None
        expander = self._expander
        self._cluster_answered = False
        failed: dict[EventId, str] = {}
        for w in items:
            keys.update(w.plan.invalidations)
        self._apply_each([(w, list(w.plan.mutations)) for w in items], failed)
        steps: list[tuple[Work, Step]] = [
            (w, functools.partial(expander.expand, e))
            for w in items
            if _id(w) not in failed
            for e in w.plan.expansions
        ]
        steps += [(r.work, step) for r in running for step in r.steps]
        expanded = self._run_each(lambda step: step(), steps, failed)
        keys.update(k for _, x in expanded for k in x.keys)
        self._apply_each([(w, x.mutations) for w, x in expanded], failed)
        written = [(w, x) for w, x in expanded if _id(w) not in failed]
        undo = self._run_each(lambda x: x.recheck(), written, failed)
        self._apply_each(undo, failed)
        more: dict[EventId, list[Step]] = {}
        for w, x in written:
            if x.more is not None and _id(w) not in failed:
                more.setdefault(_id(w), []).append(x.more)
        return failed, more

    def _apply_each(self, groups: list[tuple[Work, list[Mutation]]], failed: dict) -> None:
        """Write every event's mutations together; on failure, each event's on its own."""
        merged: dict[EventId, tuple[Work, list[Mutation]]] = {}
        for w, mutations in groups:
            if mutations and _id(w) not in failed:
                merged.setdefault(_id(w), (w, []))[1].extend(mutations)
        if not merged:
            return
        try:
            self._apply([m for _, ms in merged.values() for m in ms])
            return
        except Exception as exc:
            if len(merged) == 1:
                self._fail(next(iter(merged.values()))[0], exc, failed)
                return
            self._blame(exc)  # the cluster's fault: no point in trying each event
        for w, mutations in merged.values():
            try:
                self._apply(mutations)
            except Exception as exc:
                self._fail(w, exc, failed)

    def _run_each(
        self, fn: Callable[[T], R], jobs: Sequence[tuple[Work, T]], failed: dict
    ) -> list[tuple[Work, R]]:
        """Run ``fn`` on every job side by side; return the results, note who failed."""

        def attempt(job: tuple[Work, T]) -> tuple[bool, Any]:
            try:
                return True, fn(job[1])
            except Exception as exc:
                return False, exc

        results = []
        for (w, _), (ok, value) in zip(jobs, self._side_by_side(attempt, jobs), strict=True):
            if ok:
                results.append((w, value))
            else:
                self._fail(w, value, failed)
        return results

    def _fail(self, w: Work, exc: Exception, failed: dict) -> None:
        """Note that ``w`` failed, unless the writer or the cluster is to blame (raise)."""
        self._blame(exc)
        failed.setdefault(_id(w), _describe(exc))

    def _blame(self, exc: Exception) -> None:
        """Raise DependencyUnavailable if Cassandra, not the event, is to blame."""
        if cassandra.is_transient(exc) and not self._cluster_answered:
            self._cluster_answered = cassandra.answers(self._session, PROBE_TIMEOUT_S)
            if not self._cluster_answered:
                raise DependencyUnavailable("cassandra", _describe(exc)) from exc

    def _side_by_side(self, fn: Callable[[T], R], inputs: Sequence[T]) -> list[R]:
        """Return ``[fn(x) for x in inputs]``, run concurrently on the read pool."""
        if len(inputs) <= 1 or self._reads is None:
            return [fn(x) for x in inputs]
        return list(self._reads.map(fn, inputs))

    def _apply(self, mutations: list[Mutation]) -> None:
        """Write ``mutations``, binding and sending at most APPLY_CHUNK at a time.

        Bound statements cost far more memory than mutations: a shard with 100,000
        followers bound all at once took the process past 500 MiB. Every write is
        idempotent, so a chunk retried after a failure repeats nothing harmful. Writes that
        a newer one of the same row shadows are dropped first (``statements.coalesce``:
        the same result, e.g. a hot shard's counts written once per flush, not per like).
        """
        mutations = st.coalesce(mutations)
        if not mutations:
            return
        assert self._statements is not None
        for i in range(0, len(mutations), APPLY_CHUNK):
            chunk = mutations[i : i + APPLY_CHUNK]
            statements = cassandra.group_statements(chunk, self._statements.bind, self._replicas)
            cassandra.execute_all(self._session, statements, self._pipeline.write_concurrency)
            self._count_written(chunk, len(statements))

    def _count_written(self, mutations: list[Mutation], statements: int) -> None:
        """Count what one applied chunk wrote (a retried chunk counts again: sent twice);
        each statement's table is looked up once, not per mutation (``_TABLE_OF``)."""
        by_table = collections.Counter(_TABLE_OF[m.statement] for m in mutations)
        for table, n in by_table.items():
            self._metrics.rows_by_table[table].inc(n)
        self._metrics.statements_sent.inc(statements)

    def _hand_on(self, done: list[Work], keys: set[str]) -> None:
        """Send the flush's keys and events together: acks go out only after the delete."""
        if done or keys:
            first = done[0].record if done else None
            key = (first.topic, first.partition) if first else None
            self._invalidators.tell(key, InvalidateBatch(frozenset(keys), tuple(done)))

    # -- events that failed ----------------------------------------------------------------

    def _settle(self, items: list[Work], failed: dict[EventId, str]) -> None:
        """Forget the events that went through; schedule (or park) the ones that failed."""
        now = time.monotonic()
        pipeline = self._pipeline
        for w in items:
            error = failed.get(_id(w))
            if error is None and _id(w) in self._running:
                continue  # not through yet: a failure of a later step still counts here
            if error is None:
                was = self._failing.pop(_id(w), None)
                if was is not None and was.parked:
                    logger.warning("parked event %s went through at last", _where(w))
                continue
            f = self._failing.setdefault(_id(w), _Failing(w, since=now))
            f.work, f.error = w, error
            f.attempts += 1
            self._metrics.cassandra_retries.inc()
            if not f.parked and now - f.since >= pipeline.retry_budget_s:
                f.parked = True
                self._metrics.parked_total.inc()
                logger.error(
                    "parked event %s: failed %d times in %.0f s (%s); its partition commits"
                    " nothing past it; retrying every %.0f s",
                    _where(w),
                    f.attempts,
                    now - f.since,
                    error,
                    pipeline.parked_retry_s,
                )
            elif f.parked:
                logger.error("parked event %s failed again: %s", _where(w), error)
            else:
                logger.warning("event %s failed (attempt %d): %s", _where(w), f.attempts, error)
            f.due = now + (pipeline.parked_retry_s if f.parked else self._backoff(f.attempts))

    def _backoff(self, attempts: int) -> float:
        """Return the pause before attempt ``attempts + 1``: exponential, capped, jittered."""
        cap = self._pipeline.retry_backoff_max_s
        return _jitter(min(cap, FIRST_RETRY_S * 2 ** min(attempts - 1, 30)))

    def _wake_for_retries(self) -> None:
        """Publish the parked count; make sure a Flush comes when the next retry is due."""
        parked = sum(1 for f in self._failing.values() if f.parked)
        self._parked_gauge.set(parked)
        waiting = [f.due for key, f in self._failing.items() if key not in self._running]
        if not waiting:
            return
        now = time.monotonic()
        due = min(waiting)
        if now < self._wake_at <= due:
            return  # a wake-up at or before then is already set
        if self._timer is not None:
            self._timer.cancel()
        ref = self.actor_ref
        self._wake_at = due
        self._timer = call_later(max(0.0, due - now), lambda: tell_quietly(ref, Flush()))

    def _retry_transient(self, call: Callable[[], T], what: str) -> T:
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
                self._cassandra_up.set(1)
                return result
            except Exception as exc:
                if not cassandra.is_transient(exc):
                    raise
                cause = exc.__cause__ if isinstance(exc, DependencyUnavailable) else exc
                self._last_error = f"{what}: {type(cause or exc).__name__}"
                self._cassandra_up.set(0)
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > RESTART_AFTER_S:
                    raise DependencyUnavailable("cassandra", self._last_error) from exc
                self._metrics.cassandra_retries.inc()
                pause = _jitter(delay)
                logger.warning("cassandra %s failed (%s); retrying in %.1fs", what, exc, pause)
                time.sleep(pause)
                delay = min(delay * 2, 1.0)


def _mode_authors(w: Work) -> set[int]:
    return {e.author_id for e in w.plan.expansions if isinstance(e, ModeCheck)}


def _one_mode_check_per_author(
    works: list[Work], waiting: set[int] = frozenset()
) -> tuple[list[Work], list[Work]]:
    """Split ``works`` into this pass's and later ones: one mode check per author, oldest first.

    A mode check reads the author's standing decision and, with hysteresis, decides from
    it. Two of one author side by side would read the same old decision and the older
    event's decision could stand over the newer one's (e.g. push at 1 follower, then 4
    followers reading the old pull and changing nothing); so of one author's checks only
    the oldest (by partition offset) runs in a pass, and none while an older one of the
    author (``waiting``: failed, retry not due) may not have written its decision. One
    author's users events share a partition, so a writer: this is enough.
    """
    oldest: dict[int, tuple[str, int, int]] = {}
    for w in works:
        for author in _mode_authors(w):
            oldest[author] = min(oldest.get(author, _position(w)), _position(w))
    taken: list[Work] = []
    later: list[Work] = []
    for w in works:
        authors = _mode_authors(w)
        if authors & waiting or any(oldest[a] != _position(w) for a in authors):
            later.append(w)
        else:
            taken.append(w)
    return taken, later


def _position(w: Work) -> tuple[str, int, int]:
    return (w.record.topic, w.record.partition, w.record.offset)


def _id(w: Work) -> EventId:
    return (w.record.topic, w.record.partition, w.record.offset)


def _where(w: Work) -> str:
    return f"{w.record.topic}[{w.record.partition}]@{w.record.offset}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _jitter(delay: float) -> float:
    """Return ``delay`` scaled by a random factor in [0.5, 1): writers do not retry in step."""
    return delay * (0.5 + random.random() / 2)
