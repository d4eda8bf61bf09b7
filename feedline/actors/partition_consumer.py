"""Own one Kafka partition's in-flight events until each is acknowledged.

The KafkaConsumer hands it the records it polled; it passes them to an Adapter and keeps
them until a ``Done`` comes back. Its Watermark says how far the partition is done; it
reports that to the KafkaConsumer, the only thread allowed to store offsets. On a restart
anywhere in the pipeline (the epoch moves) it re-sends whatever is still pending.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

from feedline.actors.epoch import RestartEpoch
from feedline.actors.messages import (
    AdaptBatch,
    Done,
    Drain,
    InjectFailure,
    PartitionStarted,
    Progress,
    Record,
    Records,
    Tick,
)
from feedline.actors.router import Router, tell_quietly
from feedline.actors.watermark import Watermark
from feedline.supervisors import ChildLink, SupervisedActor

logger = logging.getLogger(__name__)

_incarnations = itertools.count(1)  # see PartitionStarted


@dataclass
class _Pending:
    record: Record
    epoch: int
    sent_at: float


class PartitionConsumer(SupervisedActor):
    """Track and (re)dispatch the events of one topic partition."""

    def __init__(
        self,
        topic: str,
        partition: int,
        consumer: Any,
        adapters: Router,
        epoch: RestartEpoch,
        metrics: Any = None,
        resend_after_s: float = 300.0,
        *,
        link: ChildLink | None = None,
    ):
        super().__init__(link=link)
        self.topic = topic
        self.partition = partition
        self._consumer = consumer  # ActorRef of the KafkaConsumer
        self._adapters = adapters
        self._epoch = epoch
        self._metrics = metrics
        self._resend_after_s = resend_after_s
        self._watermark = Watermark()
        self._pending: dict[int, _Pending] = {}
        self._drain_replies: list[Any] = []
        self._received = 0
        self._processed = 0
        self._resent = 0
        self._last_reported: int | None = None
        self._incarnation = next(_incarnations)  # built in spec order, by the supervisor

    def on_start(self) -> None:
        started = PartitionStarted(self.topic, self.partition, self.actor_ref, self._incarnation)
        tell_quietly(self._consumer, started)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Records):
            self._accept(message.records)
        elif isinstance(message, Done):
            self._finish(message.offsets)
        elif isinstance(message, Tick):
            self._resend_stale()
            self._report(force=True)
        elif isinstance(message, Drain):
            self._drain_replies.append(message.reply)
            self._resend_stale()
            self._answer_drain()
        elif isinstance(message, InjectFailure):
            raise RuntimeError(message.reason)
        else:
            logger.warning("%s ignored unexpected %r", self.actor_urn, message)
        return None

    def health(self) -> dict[str, Any]:
        """Return stats for the actor tree (see supervisors' health protocol)."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "messages_processed": self._processed,
            "in_flight": self._watermark.in_flight,
            "committable_offset": self._watermark.committable,
            "resent": self._resent,
        }

    def _accept(self, records: tuple[Record, ...]) -> None:
        self._received += len(records)
        fresh = [r for r in records if self._watermark.add(r.offset)]
        now = time.monotonic()
        epoch = self._epoch.value
        for record in fresh:
            self._pending[record.offset] = _Pending(record, epoch, now)
        if fresh:
            self._send(tuple(fresh))

    def _send(self, records: tuple[Record, ...]) -> None:
        self._adapters.tell((self.topic, self.partition), AdaptBatch(records, self.actor_ref))

    def _finish(self, offsets: tuple[int, ...]) -> None:
        for offset in offsets:
            if self._pending.pop(offset, None) is not None:
                self._processed += 1
            self._watermark.mark_done(offset)
        self._report()
        self._answer_drain()

    def _resend_stale(self) -> None:
        """Re-send pending events handed out before a restart, or very long ago.

        The epoch covers every known way to lose a message (a restart); the timer is only
        a safety net, kept long so that a slow outage does not pile up duplicates.
        """
        now = time.monotonic()
        epoch = self._epoch.value
        stale = [
            p
            for p in self._pending.values()
            if p.epoch < epoch or now - p.sent_at > self._resend_after_s
        ]
        if not stale:
            return
        for p in stale:
            p.epoch, p.sent_at = epoch, now
        self._resent += len(stale)
        if self._metrics is not None:
            self._metrics.resent.inc(len(stale))
        logger.info("%s[%d]: re-sending %d events", self.topic, self.partition, len(stale))
        self._send(tuple(p.record for p in stale))

    def _report(self, force: bool = False) -> None:
        committable = self._watermark.committable
        if force or committable != self._last_reported:
            self._last_reported = committable
            progress = Progress(
                self.topic,
                self.partition,
                committable,
                self._watermark.in_flight,
                self._received,
            )
            tell_quietly(self._consumer, progress)

    def _answer_drain(self) -> None:
        if self._drain_replies and not self._pending:
            for reply in self._drain_replies:
                reply.set(self._watermark.committable)
            self._drain_replies.clear()
