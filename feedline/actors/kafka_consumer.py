"""Poll Kafka and own every call to the Consumer, from one actor thread.

confluent-kafka 2.16 serialises Consumer calls behind one lock that ``consume()`` holds
for its whole timeout, so calls from other threads stall. This actor therefore polls by
telling itself ``Poll`` and, between polls, handles what the PartitionConsumers report:
it stores their committable offsets (auto-commit then commits them about once a second)
and pauses or resumes partitions for backpressure. Rebalance callbacks run inside
``consume()`` on this same thread, which is what makes draining on revoke safe. While it
drains (a revoke, a shutdown) it polls no more, so it ticks the partition owners itself:
work an actor restart dropped mid-drain is re-sent within a tick, not at the drain's bound.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pykka
from confluent_kafka import Consumer, KafkaException, TopicPartition

from feedline.actors.messages import (
    Drain,
    InjectFailure,
    PartitionStarted,
    Poll,
    Progress,
    Record,
    Records,
    Shutdown,
    Tick,
)
from feedline.actors.router import tell_quietly
from feedline.settings import KafkaSettings
from feedline.supervisors import ChildLink, ChildSpec, StartChild, SupervisedActor, TerminateChild
from feedline.supervisors.snapshot import HEALTH_CALL

logger = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0  # owners report progress and re-send what a restart dropped
SALVAGE_TIMEOUT_S = 1.0  # after a drain timed out: how long to ask owners what they finished

TP = tuple[str, int]
SpecFactory = Callable[[str, int, Any], ChildSpec]  # (topic, partition, consumer ref)


def partition_child_id(topic: str, partition: int) -> str:
    return f"partition:{topic}:{partition}"


class PartitionChildren:
    """Start and stop PartitionConsumer actors as children of the consumer's supervisor.

    Only tells, never asks: the supervisor may itself be waiting on this consumer (while
    starting it), so a blocking ask from a rebalance callback could deadlock. A started
    child announces itself with PartitionStarted; the supervisor handles one sender's
    messages in order, so a stop followed by a start of the same partition is safe. A
    child that cannot start is retried by the supervisor like a crashed one (``retry``):
    a slow start on a loaded box is that partition's problem, not the whole tree's.
    """

    def __init__(self, supervisor: Any, make_spec: SpecFactory):
        self._supervisor = supervisor
        self._make_spec = make_spec

    def start(self, topic: str, partition: int, consumer: Any) -> None:
        spec = self._make_spec(topic, partition, consumer)
        tell_quietly(self._supervisor, StartChild(spec, retry=True))

    def stop(self, topic: str, partition: int) -> None:
        tell_quietly(self._supervisor, TerminateChild(partition_child_id(topic, partition)))


class KafkaConsumer(SupervisedActor):
    """The one thread that polls, stores offsets, pauses and resumes."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: list[str],
        partition_spec: SpecFactory,
        metrics: Any,
        max_in_flight: int = 1000,
        commit_interval_s: float = 1.0,
        drain_timeout_s: float = 20.0,
        poll_batch: int = 500,
        poll_timeout_s: float = 0.05,
        *,
        link: ChildLink | None = None,
    ):
        super().__init__(link=link)
        self._kafka = kafka
        self._topics = topics
        self._partition_spec = partition_spec
        self._children: PartitionChildren | None = None
        self._metrics = metrics
        self._max_in_flight = max_in_flight
        self._commit_interval_ms = int(commit_interval_s * 1000)
        self._drain_timeout_s = drain_timeout_s
        self._poll_batch = poll_batch
        self._poll_timeout_s = poll_timeout_s
        self._consumer: Consumer | None = None
        self._running = False
        self._owners: dict[TP, Any] = {}  # None until the PartitionConsumer has started
        self._incarnation: dict[TP, int] = {}  # of the latest owner announced (kept)
        self._waiting: dict[TP, list[Record]] = {}  # polled before the owner started
        self._sent: dict[TP, int] = {}
        self._in_flight: dict[TP, int] = {}
        self._first_offset: dict[TP, int] = {}
        self._stored: dict[TP, int] = {}
        self._paused: set[TP] = set()
        self._stats: dict[TP, dict[str, int]] = {}
        self._next_tick = 0.0
        self._polled = 0
        self._kafka_error: str | None = None
        self._next_error_log = 0.0

    # -- lifecycle -------------------------------------------------------------------

    def on_start(self) -> None:
        assert self.link is not None, "partition actors live under the consumer's supervisor"
        self._children = PartitionChildren(self.link.supervisor, self._partition_spec)
        self._consumer = Consumer(self._config())
        self._consumer.subscribe(
            self._topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._running = True
        self.actor_ref.tell(Poll())

    def on_stop(self) -> None:
        # Our supervisor is stopping us and stops the partition actors itself (they
        # started after us, so they stop before us).
        self._children = None
        try:
            self._close()
        finally:
            super().on_stop()

    def on_failure(self, *exc_info: Any) -> None:
        """Report the crash first, then close: pykka swallows whatever ``on_failure``
        raises, so a ``close()`` that raised (or hung) before the report would leave the
        supervisor showing a dead consumer as running, and consumption stopped for good.

        Closing after the report is safe: a replacement may join the group meanwhile, but
        Kafka hands it our partitions only once our ``close()`` has revoked them (drained
        and committed; stored offsets cover only finished events) or our session expired.
        """
        try:
            super().on_failure(*exc_info)
        finally:
            try:
                self._close()
            except Exception:
                logger.exception("closing the Kafka consumer after a crash failed")

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Poll):
            if self._running:
                self._poll_once()
                self.actor_ref.tell(Poll())
        elif isinstance(message, Progress):
            self._on_progress(message)
        elif isinstance(message, PartitionStarted):
            self._on_partition_started(message)
        elif isinstance(message, Shutdown):
            self._shutdown()
            if message.reply is not None:
                message.reply.set(True)
        elif isinstance(message, InjectFailure):
            raise RuntimeError(message.reason)
        return None

    def health(self) -> dict[str, Any]:
        """Return per-partition offsets, lag and backpressure for the health tree."""
        partitions = []
        for topic, partition in sorted(self._owners):
            stats = self._stats.get((topic, partition), {})
            partitions.append(
                {
                    "topic": topic,
                    "partition": partition,
                    "committed_offset": stats.get("committed_offset"),
                    "stored_offset": self._stored.get((topic, partition)),
                    "lag": stats.get("consumer_lag"),
                    "in_flight": self._in_flight.get((topic, partition), 0),
                    "paused": (topic, partition) in self._paused,
                }
            )
        return {
            "messages_processed": self._polled,
            "in_flight": sum(self._in_flight.values()),
            "kafka_error": self._kafka_error,
            "partitions": partitions,
        }

    # -- polling ---------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self._kafka.bootstrap,
            "group.id": self._kafka.group_id,
            "enable.auto.commit": True,
            "auto.commit.interval.ms": self._commit_interval_ms,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": self._kafka.session_timeout_ms,
            # A heartbeat a second (or three per session): after the group coordinator's
            # broker dies, the session must outlast fencing it (3 s in the cluster) and
            # finding the new coordinator, counted from the last heartbeat that got through.
            "heartbeat.interval.ms": max(500, min(1000, self._kafka.session_timeout_ms // 3)),
            "statistics.interval.ms": 1000,
            "stats_cb": self._on_stats,
            "error_cb": self._on_error,
        }

    def _poll_once(self) -> None:
        assert self._consumer is not None
        messages = self._consumer.consume(self._poll_batch, self._poll_timeout_s)
        batches: dict[TP, list[Record]] = {}
        for m in messages:
            if m.error():
                logger.warning("consumer error: %s", m.error())
                continue
            tp = (m.topic(), m.partition())
            batches.setdefault(tp, []).append(
                Record(m.topic(), m.partition(), m.offset(), m.key(), m.value())
            )
        for tp, records in batches.items():
            self._dispatch(tp, records)
        if messages:
            self._kafka_error = None
        if time.monotonic() >= self._next_tick:
            self._next_tick = time.monotonic() + TICK_INTERVAL_S
            self._tick_owners()

    def _dispatch(self, tp: TP, records: list[Record]) -> None:
        if tp not in self._owners:
            return  # revoked meanwhile: the next owner reads these again
        self._first_offset.setdefault(tp, records[0].offset)
        self._polled += len(records)
        self._in_flight[tp] = self._in_flight.get(tp, 0) + len(records)
        owner = self._owners[tp]
        if owner is None:
            self._waiting.setdefault(tp, []).extend(records)
        elif tell_quietly(owner, Records(tuple(records))):
            self._sent[tp] = self._sent.get(tp, 0) + len(records)
        # else: the owner is restarting; its PartitionStarted makes us rewind.
        if self._in_flight[tp] >= self._max_in_flight and tp not in self._paused:
            self._set_paused(tp, True)

    # -- progress and backpressure ------------------------------------------------------

    def _on_progress(self, p: Progress) -> None:
        tp = (p.topic, p.partition)
        if tp not in self._owners or self._consumer is None:
            return
        self._in_flight[tp] = p.in_flight + max(0, self._sent.get(tp, 0) - p.received)
        self._store_ahead(tp, p.committable)
        if tp in self._paused and self._in_flight[tp] <= self._max_in_flight // 2:
            self._set_paused(tp, False)

    def _store(self, tp: TP, offset: int) -> None:
        if self._consumer is None:
            return
        try:
            self._consumer.store_offsets(offsets=[TopicPartition(tp[0], tp[1], offset)])
            self._stored[tp] = offset
            self._metrics.committed.labels(tp[0], str(tp[1])).set(offset)
        except KafkaException as exc:
            logger.warning("store_offsets %s failed: %s", tp, exc)

    def _set_paused(self, tp: TP, paused: bool) -> None:
        assert self._consumer is not None
        part = [TopicPartition(tp[0], tp[1])]
        if paused:
            self._consumer.pause(part)
            self._paused.add(tp)
            self._metrics.pauses.inc()
        else:
            self._consumer.resume(part)
            self._paused.discard(tp)
        self._metrics.paused.set(len(self._paused))

    def _on_partition_started(self, started: PartitionStarted) -> None:
        """Adopt a partition's owner: hand it what was polled meanwhile, or, if it
        replaces a crashed owner, re-read the partition from the stored watermark (the
        crashed owner's pending events died with it)."""
        tp = (started.topic, started.partition)
        if tp not in self._owners:
            return  # revoked meanwhile
        if started.incarnation < self._incarnation.get(tp, 0):
            # Given up on as too slow to start and already replaced: it is being stopped.
            logger.info("partition %s: late start of a replaced owner ignored", tp)
            return
        self._incarnation[tp] = started.incarnation
        previous = self._owners[tp]
        self._owners[tp] = started.ref
        if previous is None:
            waiting = self._waiting.pop(tp, [])
            if waiting and tell_quietly(started.ref, Records(tuple(waiting))):
                self._sent[tp] = self._sent.get(tp, 0) + len(waiting)
            return
        if previous.actor_urn == started.ref.actor_urn:
            return
        offset = self._stored.get(tp, self._first_offset.get(tp))
        self._sent[tp] = 0
        self._in_flight[tp] = 0
        if offset is not None and self._consumer is not None:
            logger.warning("partition %s owner restarted: rewinding to %d", tp, offset)
            self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
        if tp in self._paused:
            self._set_paused(tp, False)

    # -- rebalancing -----------------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self._children is not None
        for p in partitions:
            self._owners[(p.topic, p.partition)] = None
            self._children.start(p.topic, p.partition, self.actor_ref)
        logger.info("assigned %s", _describe_tps((p.topic, p.partition) for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions if (p.topic, p.partition) in self._owners]
        self._drain(tps)
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            logger.info("commit on revoke: %s", exc)  # e.g. nothing stored yet
        self._forget(tps)
        logger.info("revoked %s", _describe_tps(tps))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Fenced: offsets stored now would never be committed. Drop the work.
        tps = [(p.topic, p.partition) for p in partitions if (p.topic, p.partition) in self._owners]
        self._forget(tps)
        self._metrics.partitions_lost.inc(len(partitions))
        logger.warning("lost %s", _describe_tps(tps))

    def _drain(self, tps: list[TP]) -> None:
        """Wait (bounded) for the partitions' in-flight events, then store their offsets.

        This thread polls no more meanwhile, so it ticks every owner itself: an event an
        actor restart dropped mid-drain is re-sent within a tick instead of holding the
        drain (and a rebalance) until the bound. Partitions that did not finish in time
        still store what their owners finished; the rest is re-read by the next owner.
        """
        pending = {}
        for tp in tps:
            owner = self._owners.get(tp)
            if owner is not None:
                reply = pykka.ThreadingFuture()
                if tell_quietly(owner, Drain(reply)):
                    pending[tp] = reply
        deadline = time.monotonic() + self._drain_timeout_s
        next_tick = time.monotonic() + TICK_INTERVAL_S
        while pending and (now := time.monotonic()) < deadline:
            if now >= next_tick:
                next_tick = now + TICK_INTERVAL_S
                self._tick_owners()
            tp, reply = next(iter(pending.items()))
            try:
                committable = reply.get(timeout=max(0.0, min(deadline, next_tick) - now))
            except pykka.Timeout:
                continue
            del pending[tp]
            self._store_ahead(tp, committable)
        if pending:
            logger.warning(
                "drain of %s timed out after %.0fs; their unfinished events will be re-read",
                _describe_tps(pending),
                self._drain_timeout_s,
            )
            self._salvage(list(pending))

    def _salvage(self, tps: list[TP]) -> None:
        """Store what the owners of partitions that did not drain in time have finished."""
        asked = {}
        for tp in tps:
            owner = self._owners.get(tp)
            if owner is not None:
                try:
                    asked[tp] = owner.ask(HEALTH_CALL, block=False)
                except pykka.ActorDeadError:
                    continue
        deadline = time.monotonic() + SALVAGE_TIMEOUT_S
        for tp, future in asked.items():
            try:
                health = future.get(timeout=max(0.0, deadline - time.monotonic()))
            except (pykka.Timeout, pykka.ActorDeadError):
                continue
            self._store_ahead(tp, health.get("committable_offset"))

    def _store_ahead(self, tp: TP, committable: int | None) -> None:
        if committable is not None and committable > self._stored.get(tp, -1):
            self._store(tp, committable)

    def _tick_owners(self) -> None:
        for owner in list(self._owners.values()):
            if owner is not None:  # None until its PartitionConsumer has started
                tell_quietly(owner, Tick())

    def _forget(self, tps: list[TP]) -> None:
        for tp in tps:
            self._owners.pop(tp, None)
            if self._children is not None:
                self._children.stop(*tp)
            for state in (
                self._sent,
                self._in_flight,
                self._first_offset,
                self._stored,
                self._waiting,
            ):
                state.pop(tp, None)
            self._paused.discard(tp)
            self._stats.pop(tp, None)

    def _shutdown(self) -> None:
        self._running = False
        tps = list(self._owners)
        self._drain(tps)
        # Forget them now, so close()'s revoke finds nothing to drain a second time (the
        # whole stop stays within one drain timeout); it still commits what was stored.
        self._forget(tps)
        self._close()

    def _close(self) -> None:
        self._running = False
        try:
            if self._consumer is not None:
                try:
                    self._consumer.close()  # commits stored offsets; on_revoke drains the rest
                finally:
                    self._consumer = None
        finally:
            self._forget(list(self._owners))  # even if close() raised: stop the owners

    # -- librdkafka callbacks (called inside consume(), on this thread) -------------------

    def _on_stats(self, raw: str) -> None:
        stats = json.loads(raw)
        for topic, t in stats.get("topics", {}).items():
            for pid, p in t.get("partitions", {}).items():
                tp = (topic, int(pid))
                if tp in self._owners:
                    lag = p.get("consumer_lag")
                    self._stats[tp] = {
                        "committed_offset": p.get("committed_offset"),
                        "consumer_lag": lag,
                    }
                    if lag is not None and lag >= 0:
                        self._metrics.lag.labels(topic, pid).set(lag)

    def _on_error(self, error: Any) -> None:
        """Record the error for health; log it when it changes or every 10 s, not per poll."""
        text = str(error)
        now = time.monotonic()
        if text != self._kafka_error or now >= self._next_error_log:
            logger.warning("kafka: %s", text)
            self._next_error_log = now + 10.0
        self._kafka_error = text


def _describe_tps(tps: Any) -> str:
    """Return 'topic[0,1,2] other[3]' for log lines that stay one line long."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in tps:
        by_topic.setdefault(topic, []).append(partition)
    return " ".join(f"{t}{sorted(ps)}" for t, ps in sorted(by_topic.items())) or "nothing"
