"""Publish poison events to the dead-letter topic, then let their partition move on.

An event is acknowledged only after the broker has the dead letter, so a crash in between
re-reads the event instead of losing it. The dead letter keeps the original key and value
and names its source and the error in headers, so it can be inspected and replayed.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Producer

from feedline.actors.messages import DeadLetter, Done, InjectFailure
from feedline.actors.router import tell_quietly
from feedline.supervisors import ChildLink, SupervisedActor

logger = logging.getLogger(__name__)


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

    def on_start(self) -> None:
        self._producer = Producer(
            {"bootstrap.servers": self._bootstrap, "acks": "all", "enable.idempotence": True}
        )

    def on_stop(self) -> None:
        if self._producer is not None:
            self._producer.flush(self._flush_timeout_s)
        super().on_stop()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, DeadLetter):
            self._publish(message)
        elif isinstance(message, InjectFailure):
            raise RuntimeError(message.reason)
        return None

    def health(self) -> dict[str, Any]:
        return {"messages_processed": self._sent, "in_flight": self.actor_inbox.qsize()}

    def _publish(self, letter: DeadLetter) -> None:
        record = letter.record
        headers = {
            "feedline.source.topic": record.topic,
            "feedline.source.partition": str(record.partition),
            "feedline.source.offset": str(record.offset),
            "feedline.error": letter.error[:2000],
        }
        assert self._producer is not None
        self._producer.produce(self._topic, value=record.value, key=record.key, headers=headers)
        if self._producer.flush(self._flush_timeout_s) > 0:
            # Not acknowledged: raise so the supervisor restarts us; the event stays
            # pending in its partition and is handed out again.
            raise RuntimeError("dead-letter topic did not acknowledge in time")
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
