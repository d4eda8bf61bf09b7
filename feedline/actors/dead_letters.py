"""Publish poison events to the dead-letter topic, then let their partition move on.

An event is acknowledged only on a successful delivery report for its dead letter: the
broker has it. The dead letter keeps the original key and value and names its source
and the error in headers, so it can be inspected and replayed. The DLQ topic is sized
for the largest source record plus these headers (``connector/topics.py``).

When the broker refuses a letter (too large for the topic, not authorized, no such
topic, or no answer within ``flush_timeout_s``), the event is not acknowledged: its
partition commits nothing past it. It is logged at ERROR, counted
(``feedline_dlq_failed_total``) and named in ``/health/actors`` (status degraded), and
the actor keeps running: the letter is tried again when the partition owner re-sends
the event (after any actor restart, or its 5-minute safety net), and leaves the list
once delivered. A fatal producer error (the idempotent producer cannot go on) crashes
the actor instead: only a new producer can send again, and the restart makes partition
owners re-send.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from feedline.actors.messages import DeadLetter, Done, InjectFailure
from feedline.actors.router import tell_quietly
from feedline.supervisors import ChildLink, SupervisedActor

logger = logging.getLogger(__name__)

ERROR_MAX_BYTES = 2000  # of the error header (topics.DLQ_HEADROOM_BYTES covers all headers)
# librdkafka refuses messages over its own message.max.bytes (default 1,000,000, below a
# source topic's 1,048,588) before the broker sees them; let the topic's limit decide.
PRODUCER_MAX_BYTES = 32 * 1024 * 1024
REPORT_GRACE_S = 5.0  # flush waits this much past message.timeout.ms for the report
UNDELIVERABLE_SHOWN = 20


class DeadLetters(SupervisedActor):
    """Own a Kafka producer for the dead-letter topic."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        metrics: Any,
        flush_timeout_s: float = 10.0,
        *,
        link: ChildLink | None = None,
    ):
        super().__init__(link=link)
        self._bootstrap = bootstrap
        self._topic = topic
        self._metrics = metrics
        self._flush_timeout_s = flush_timeout_s
        self._producer: Producer | None = None
        self._sent = 0
        # (topic, partition, offset) -> (owner, error) of letters the broker refused
        self._undeliverable: dict[tuple[str, int, int], tuple[Any, str]] = {}

    def on_start(self) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": self._bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "message.max.bytes": PRODUCER_MAX_BYTES,
                # Every letter gets its delivery report, success or failure, within a flush.
                "message.timeout.ms": int(self._flush_timeout_s * 1000),
            }
        )

    def on_stop(self) -> None:
        try:
            if self._producer is not None:
                self._producer.flush(self._flush_timeout_s)
        finally:
            super().on_stop()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, DeadLetter):
            self._publish(message)
        elif isinstance(message, InjectFailure):
            raise RuntimeError(message.reason)
        return None

    def health(self) -> dict[str, Any]:
        # A refused letter whose owner is gone (partition moved, owner restarted) is the
        # new owner's to send again.
        self._undeliverable = {k: v for k, v in self._undeliverable.items() if v[0].is_alive()}
        return {
            "messages_processed": self._sent,
            "in_flight": self.actor_inbox.qsize(),
            "undeliverable": [
                f"{t}[{p}]@{o}: {error}"
                for (t, p, o), (_, error) in list(self._undeliverable.items())[:UNDELIVERABLE_SHOWN]
            ],
        }

    def _publish(self, letter: DeadLetter) -> None:
        record = letter.record
        error = letter.error.encode()[:ERROR_MAX_BYTES].decode(errors="ignore")
        headers = {
            "feedline.source.topic": record.topic,
            "feedline.source.partition": str(record.partition),
            "feedline.source.offset": str(record.offset),
            "feedline.error": error,
        }
        assert self._producer is not None
        reports: list[KafkaError | None] = []
        try:
            self._producer.produce(
                self._topic,
                value=record.value,
                key=record.key,
                headers=headers,
                on_delivery=lambda err, _msg: reports.append(err),
            )
        except KafkaException as exc:  # refused before sending, e.g. larger than allowed
            reports.append(exc.args[0])
        if not reports:
            self._producer.flush(self._flush_timeout_s + REPORT_GRACE_S)
        if not reports:
            # Not acknowledged: crash so the supervisor starts a new producer; the event
            # stays pending in its partition and is handed out again.
            raise RuntimeError("dead-letter topic gave no delivery report in time")
        if reports[0] is not None:
            self._refused(letter, reports[0])
            return
        self._undeliverable.pop((record.topic, record.partition, record.offset), None)
        self._sent += 1
        self._metrics.dlq.inc()
        logger.warning(
            "dead-lettered %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            letter.error,
        )
        tell_quietly(letter.owner, Done((record.offset,)))

    def _refused(self, letter: DeadLetter, error: KafkaError) -> None:
        """Keep the event unacknowledged and visible; crash if the producer is done for."""
        record = letter.record
        self._metrics.dlq_failed.inc()
        logger.error(
            "dead letter for %s[%d]@%d refused by %s: %s; the event stays unacknowledged",
            record.topic,
            record.partition,
            record.offset,
            self._topic,
            error,
        )
        if error.fatal():
            raise KafkaException(error)
        key = (record.topic, record.partition, record.offset)
        self._undeliverable[key] = (letter.owner, f"{error.name()}: {error.str()}")
