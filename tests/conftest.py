"""Session fixtures for tests against the real stack (``make stack-up``), shared by all suites.

- ``settings``: the environment's settings (the same ones the stack was started with).
- ``pg_conn``: an autocommit psycopg2 connection as the application role.
- ``cassandra_session``: a driver session in the Feedline keyspace.
- ``redis_client``: a redis-py client.
- ``kafka_tail``: ``kafka_tail(topic)`` remembers where the topic ends *now*; after acting,
  ``.wait_for(predicate, timeout)`` reads from there until a decoded event matches.

The stack is shared with other tests and engineers: make your own rows, never truncate.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from feedline.settings import Settings, load

# Every request of the suite comes from 127.0.0.1 and shares the per-IP counters with
# everyone on the stack (one run signs up ~230 users in its busiest minute; the failure
# suite's load generator fails tokens on purpose): raise the per-IP limits for the suite
# and the processes it starts. tests/integration/http/test_rate_limits.py sets its own.
for _rule, _limit in (("SIGNUP", "600/minute"), ("LOGIN", "600/minute"),
                      ("FAILED_AUTH", "300/minute")):  # fmt: skip
    os.environ.setdefault(f"FEEDLINE_RATE_{_rule}", _limit)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that break the stack after everything else: first the failure suite
    (it kills and restarts services), then the stack lifecycle module (stops the stack).

    The suite runs against one topology (``FEEDLINE_TOPOLOGY``): tests marked ``cluster``
    need the replicated one (``make test-cluster``), every other test the single node's.
    """
    cluster = load().stack.topology == "cluster"
    skip = pytest.mark.skip(
        reason="the single-node topology's test (make test)"
        if cluster
        else "needs the replicated cluster (make test-cluster)"
    )
    for item in items:
        if ("cluster" in item.keywords) != cluster:
            item.add_marker(skip)
    last = [i for i in items if i.module.__name__.endswith("test_stack_lifecycle")]
    failure = [i for i in items if i.module.__name__.startswith("tests.failure.") and i not in last]
    items[:] = [i for i in items if i not in last and i not in failure] + failure + last


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load()


@pytest.fixture(scope="session")
def pg_conn(settings: Settings) -> Iterator[Any]:
    import psycopg2

    conn = psycopg2.connect(settings.postgres.dsn(), connect_timeout=5)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def cassandra_session(settings: Settings) -> Iterator[Any]:
    from feedline.migrate import connect

    cluster, session = connect(settings.cassandra)
    session.set_keyspace(settings.cassandra.keyspace)
    yield session
    cluster.shutdown()


@pytest.fixture(scope="session")
def redis_client(settings: Settings) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(settings.redis.url, socket_timeout=5)
    yield client
    client.close()


@dataclass
class Event:
    """One Kafka message, its JSON key and value decoded (value None for a tombstone)."""

    topic: str
    partition: int
    offset: int
    key: Any
    value: Any


class KafkaTail:
    """Read a topic from the end it had when created, until an event matches."""

    def __init__(self, settings: Settings, topic: str):
        from confluent_kafka import Consumer, TopicPartition

        self.topic = topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka.bootstrap,
                "group.id": f"test-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        assigned = []
        for p in meta.partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assigned.append(TopicPartition(topic, p, high))
        self.consumer.assign(assigned)
        self.seen: list[Event] = []

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 30.0) -> Event:
        """Return the first event (after creation) matching ``predicate``; fail after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.consumer.consume(500, 0.2):
                if msg.error():
                    continue
                event = Event(msg.topic(), msg.partition(), msg.offset(),
                              _json(msg.key()), _json(msg.value()))  # fmt: skip
                self.seen.append(event)
                if predicate(event):
                    return event
        raise AssertionError(f"no matching event on {self.topic} in {timeout} s "
                             f"({len(self.seen)} others seen)")  # fmt: skip

    def close(self) -> None:
        self.consumer.close()


def _json(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


@pytest.fixture
def kafka_tail(settings: Settings) -> Iterator[Callable[[str], KafkaTail]]:
    tails: list[KafkaTail] = []

    def make(topic: str) -> KafkaTail:
        tails.append(KafkaTail(settings, topic))
        return tails[-1]

    yield make
    for tail in tails:
        tail.close()
