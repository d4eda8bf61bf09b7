"""Read Debezium change events that arrive on Kafka after a point in time (test helper).

A local stand-in until a shared Kafka consumer fixture exists in tests/conftest.py: it
assigns every partition of the given topics at their current end (high watermark, so only
later events are seen), then buffers decoded events until an expectation matches.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from feedline.settings import KafkaSettings


@dataclass(frozen=True)
class ChangeEvent:
    topic: str
    key: dict[str, Any] | None
    value: dict[str, Any] | None  # None is the tombstone that follows a delete

    @property
    def op(self) -> str | None:
        return self.value["op"] if self.value else None

    @property
    def row(self) -> dict[str, Any]:
        """The row after the change, or before it for a delete."""
        assert self.value is not None
        return self.value["after"] if self.value["op"] != "d" else self.value["before"]


class ChangeEvents:
    """Consume from the end of ``tables``' topics and wait for matching events."""

    def __init__(self, kafka: KafkaSettings, tables: Iterable[str]):
        self._kafka = kafka
        self._consumer = Consumer(
            {
                "bootstrap.servers": kafka.bootstrap,
                "group.id": f"feedline-test-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        self._seen: list[ChangeEvent] = []
        self._consumer.assign(self._ends([kafka.topic(t) for t in tables]))

    def _ends(self, topics: list[str]) -> list[TopicPartition]:
        metadata = self._consumer.list_topics(timeout=10)
        assigned = []
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                assigned.append(TopicPartition(topic, partition, high))
        return assigned

    def expect(
        self, table: str, match: Callable[[ChangeEvent], bool], timeout: float = 60.0
    ) -> ChangeEvent:
        """Return the first event on ``table``'s topic that ``match``es, waiting if needed."""
        topic = self._kafka.topic(table)
        deadline = time.monotonic() + timeout
        while True:
            for event in self._seen:
                if event.topic == topic and _safe(match, event):
                    return event
            if time.monotonic() > deadline:
                seen = [(e.topic, e.key, e.op) for e in self._seen]
                raise AssertionError(f"no matching event on {topic} in {timeout}s; saw {seen}")
            self._poll()

    def seen(self, table: str) -> list[ChangeEvent]:
        """Return the events read so far from ``table``'s topic, in arrival order."""
        topic = self._kafka.topic(table)
        return [event for event in self._seen if event.topic == topic]

    def _poll(self) -> None:
        for msg in self._consumer.consume(500, 0.5):
            if msg.error():
                raise AssertionError(f"Kafka error: {msg.error()}")
            self._seen.append(ChangeEvent(msg.topic(), _json(msg.key()), _json(msg.value())))

    def close(self) -> None:
        self._consumer.close()


def _json(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


def _safe(match: Callable[[ChangeEvent], bool], event: ChangeEvent) -> bool:
    try:
        return bool(match(event))
    except (KeyError, TypeError, AssertionError):
        return False
