"""DeadLetters against the real Kafka: an event counts as dead-lettered only once the broker
has its letter.

A DeadLetters actor is pointed at a temporary topic, so the refusals are the broker's own:
a topic whose ``max.message.bytes`` is too small for the letter, and a DLQ topic that
``ensure_topics`` sized for the largest record a source topic accepts.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from feedline.actors.dead_letters import DeadLetters
from feedline.actors.messages import DeadLetter, Done, Record
from feedline.connector import TABLES
from feedline.connector.topics import DLQ_HEADROOM_BYTES, ensure_topics
from feedline.pipeline.health_server import actors_report
from feedline.pipeline.metrics import PipelineMetrics
from feedline.supervisors import ChildSpec, Supervisor, WhichChild
from tests.integration.pipeline.conftest import eventually

pytestmark = pytest.mark.integration

SOURCE = "feedline.public.shards"
REQUEST_OVERHEAD = 200  # a produce request's framing around one record, generously


class Owner:
    """Stands in for the PartitionConsumer that owns the event: records its Done."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.lock = threading.Lock()

    def tell(self, message: Any) -> None:
        if isinstance(message, Done):
            with self.lock:
                self.done.extend(message.offsets)

    def is_alive(self) -> bool:
        return True


@pytest.fixture
def admin(settings: Any) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka.bootstrap})


@pytest.fixture
def temp_topics(admin: AdminClient) -> Iterator[list[str]]:
    """Names to create topics under; every one is deleted afterwards."""
    names: list[str] = []
    yield names
    if names:
        for fut in admin.delete_topics(names).values():
            fut.result(30)


def create_topic(admin: AdminClient, names: list[str], **config: str) -> str:
    name = f"feedline-test-dlq-{uuid.uuid4().hex[:12]}"
    names.append(name)
    admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(30)
    return name


@pytest.fixture
def start(settings: Any) -> Iterator[Any]:
    """Start DeadLetters on a topic under a root supervisor; return (root, its ref)."""
    roots: list[Any] = []

    def start_on(topic: str, metrics: PipelineMetrics) -> tuple[Any, Any]:
        spec = ChildSpec(
            id="dead-letters-0",
            actor=DeadLetters,
            kwargs={"bootstrap": settings.kafka.bootstrap, "topic": topic, "metrics": metrics},
        )
        roots.append(Supervisor.start(name="root", children=[spec], on_escalate=lambda _e: None))
        return roots[-1], roots[-1].ask(WhichChild("dead-letters-0"))

    yield start_on
    for root in roots:
        root.stop(block=True, timeout=30)


def letter(offset: int, value: bytes, owner: Owner, error: str = "AdaptError: test") -> DeadLetter:
    return DeadLetter(Record(SOURCE, 0, offset, b'{"id": 1}', value), error, owner)


def read_back(settings: Any, topic: str, timeout: float = 30.0) -> Any:
    """Return the first message of ``topic`` (partition 0)."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap, "group.id": f"t-{uuid.uuid4().hex}"}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        msg = consumer.poll(timeout)
        assert msg is not None and not msg.error(), msg and msg.error()
        return msg
    finally:
        consumer.close()


def metric(metrics: PipelineMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def test_a_letter_the_dlq_topic_refuses_leaves_its_event_unacknowledged_and_visible(
    settings: Any, admin: AdminClient, temp_topics: list[str], start: Any
) -> None:
    """issue 15, defect 3: ``flush() == 0`` is also true after a delivery failed, so an event
    whose letter the broker refused (here MSG_SIZE_TOO_LARGE) was acknowledged anyway."""
    topic = create_topic(admin, temp_topics, **{"max.message.bytes": "2048"})
    metrics, owner = PipelineMetrics(), Owner()
    root, dead_letters = start(topic, metrics)

    dead_letters.tell(letter(1001, b"x" * 8192, owner))
    health = dead_letters.proxy().health().get(timeout=60)  # answered after the letter

    assert owner.done == [], "acknowledged an event whose dead letter the broker refused"
    assert metric(metrics, "feedline_dlq_total") == 0
    assert metric(metrics, "feedline_dlq_failed_total") == 1
    assert any(f"{SOURCE}[0]@1001" in u for u in health["undeliverable"]), health
    report = actors_report(root, metrics)
    assert report["status"] == "degraded"
    assert any(f"{SOURCE}[0]@1001" in p for p in report["problems"]), report["problems"]
    assert dead_letters.is_alive(), "a refused letter is not a reason to crash (see docstring)"

    # The success path on the same actor: delivered, then acknowledged.
    dead_letters.tell(letter(1002, b'{"op": "x"}', owner))
    eventually(lambda: _assert(owner.done == [1002], owner.done))
    delivered = read_back(settings, topic)
    headers = dict(delivered.headers())
    assert headers["feedline.source.offset"] == b"1002"
    assert headers["feedline.error"] == b"AdaptError: test"
    assert metric(metrics, "feedline_dlq_total") == 1
    assert dead_letters.proxy().health().get(timeout=10)["undeliverable"] == [
        u for u in health["undeliverable"] if "@1001" in u
    ]


def test_the_dlq_topic_takes_the_largest_source_record_with_its_headers(
    settings: Any, admin: AdminClient, temp_topics: list[str], start: Any
) -> None:
    """A dead letter is its source record plus headers: the DLQ topic must accept the
    largest record a source topic accepts, with a long error message on top."""
    dlq = f"feedline-test-dlq-{uuid.uuid4().hex[:12]}"
    temp_topics.append(dlq)
    ensure_topics(
        dataclasses.replace(settings, kafka=dataclasses.replace(settings.kafka, dlq_topic=dlq))
    )

    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, t)
        for t in [dlq, *(settings.kafka.topic(t) for t in TABLES)]
    ]

    def sized() -> int:  # a topic's new config reaches every broker a moment later
        limits = {
            r.name: int(f.result(30)["max.message.bytes"].value)
            for r, f in admin.describe_configs(resources).items()
        }
        largest_source = max(v for k, v in limits.items() if k != dlq)
        assert limits[dlq] >= largest_source + DLQ_HEADROOM_BYTES, limits
        return largest_source

    largest_source = eventually(sized, timeout=30)

    metrics, owner = PipelineMetrics(), Owner()
    _, dead_letters = start(dlq, metrics)
    biggest = b"v" * (largest_source - REQUEST_OVERHEAD)  # what a source topic would take
    dead_letters.tell(letter(2001, biggest, owner, error="AdaptError: " + "é" * 5000))
    eventually(lambda: _assert(owner.done == [2001], owner.done), timeout=60)
    assert metric(metrics, "feedline_dlq_failed_total") == 0


def _assert(condition: bool, message: Any) -> None:
    assert condition, message
