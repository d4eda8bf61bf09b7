"""KafkaConsumer under its supervisor: draining keeps owners ticking, and a death is reported.

The Kafka client is a fake (``FakeConsumer``): these tests need rebalance callbacks at an
exact moment and a ``close()`` that raises or hangs on cue, which a real broker cannot be
made to do. Everything else is real: the Supervisor, the KafkaConsumer, the
PartitionConsumers, the restart epoch. The real client is covered on the real stack
(tests/integration/pipeline and the failure suite).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
from confluent_kafka import TopicPartition
from pykka.messages import ProxyGetAttr

from feedline.actors import kafka_consumer
from feedline.actors.epoch import RestartEpoch
from feedline.actors.kafka_consumer import KafkaConsumer, partition_child_id
from feedline.actors.messages import (
    AdaptBatch,
    Done,
    Drain,
    InjectFailure,
    PartitionStarted,
    Shutdown,
)
from feedline.actors.partition_consumer import PartitionConsumer
from feedline.pipeline.metrics import PipelineMetrics
from feedline.settings import KafkaSettings
from feedline.supervisors import (
    Backoff,
    ChildSpec,
    Intensity,
    Strategy,
    Supervisor,
    WhichChild,
    launch,
)

TOPIC = "feedline.public.shards"
DRAIN_TIMEOUT_S = 6.0


class FakeMessage:
    """What ``Consumer.consume`` returns, reduced to what the KafkaConsumer reads."""

    def __init__(self, partition: int, offset: int):
        self._partition, self._offset = partition, offset

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"{}"

    def value(self) -> bytes:
        return b"{}"


Action = Callable[["FakeConsumer"], list[FakeMessage]]


class FakeConsumer:
    """A scripted confluent_kafka.Consumer: each ``consume`` runs the next queued action.

    Actions run on the KafkaConsumer's thread, inside ``consume``, exactly where librdkafka
    runs its rebalance callbacks. ``close`` revokes what is assigned (as the real one does)
    unless told to raise or hang first.
    """

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.script: queue.Queue[Action] = queue.Queue()
        self.assigned: list[TopicPartition] = []
        self.stored: list[tuple[str, int, int]] = []
        self.commits = 0
        self.close_calls = 0
        self.close_error: BaseException | None = None
        self.close_gate: threading.Event | None = None
        self.callbacks: dict[str, Any] = {}

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        try:
            action = self.script.get(timeout=timeout)
        except queue.Empty:
            return []
        return action(self)

    def store_offsets(self, offsets: list[TopicPartition]) -> None:
        self.stored += [(tp.topic, tp.partition, tp.offset) for tp in offsets]

    def commit(self, asynchronous: bool = True) -> None:
        self.commits += 1

    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def resume(self, partitions: list[TopicPartition]) -> None:
        pass

    def seek(self, partition: TopicPartition) -> None:
        pass

    def close(self) -> None:
        self.close_calls += 1
        if self.close_gate is not None:
            self.close_gate.wait(30)
        if self.close_error is not None:
            raise self.close_error
        if self.assigned:
            self.callbacks["on_revoke"](self, self.assigned)
        self.assigned = []

    # -- actions ---------------------------------------------------------------------

    @staticmethod
    def assign(*partitions: int) -> Action:
        def run(fake: FakeConsumer) -> list[FakeMessage]:
            fake.assigned = [TopicPartition(TOPIC, p) for p in partitions]
            fake.callbacks["on_assign"](fake, fake.assigned)
            return []

        return run

    @staticmethod
    def deliver(partition: int, *offsets: int) -> Action:
        return lambda _fake: [FakeMessage(partition, o) for o in offsets]

    @staticmethod
    def revoke() -> Action:
        def run(fake: FakeConsumer) -> list[FakeMessage]:
            revoked, fake.assigned = fake.assigned, []
            fake.callbacks["on_revoke"](fake, revoked)
            return []

        return run


class Adapters:
    """Stands in for the adapters' Router: drops batches (a restarting adapter) until told
    to acknowledge them, as a healthy pipeline eventually does."""

    def __init__(self) -> None:
        self.batches: list[AdaptBatch] = []
        self.acking = False
        self._lock = threading.Lock()

    def tell(self, _key: Any, message: AdaptBatch) -> bool:
        with self._lock:
            self.batches.append(message)
            acking = self.acking
        if acking:
            message.owner.tell(Done(tuple(r.offset for r in message.records)))
        return True


class ObservedPartitionConsumer(PartitionConsumer):
    """A PartitionConsumer that lets the test know it has been asked to drain."""

    drained: threading.Event

    def on_receive(self, message: Any) -> Any:
        result = super().on_receive(message)
        if isinstance(message, Drain):
            ObservedPartitionConsumer.drained.set()
        return result


class Tree:
    """The consumers supervisor with a KafkaConsumer on a fake client, as tree.py builds it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.fakes: list[FakeConsumer] = []
        self.escalations: list[BaseException] = []
        self.adapters = Adapters()
        self.epoch = RestartEpoch()
        ObservedPartitionConsumer.drained = threading.Event()

        def make_fake(config: dict[str, Any]) -> FakeConsumer:
            self.fakes.append(FakeConsumer(config))
            return self.fakes[-1]

        monkeypatch.setattr(kafka_consumer, "Consumer", make_fake)

        def partition_spec(topic: str, partition: int, consumer: Any) -> ChildSpec:
            return ChildSpec(
                id=partition_child_id(topic, partition),
                actor=ObservedPartitionConsumer,
                kwargs={
                    "topic": topic,
                    "partition": partition,
                    "consumer": consumer,
                    "adapters": self.adapters,
                    "epoch": self.epoch,
                },
            )

        consumer = ChildSpec(
            id="kafka-consumer",
            actor=KafkaConsumer,
            kwargs={
                "kafka": KafkaSettings(),
                "topics": [TOPIC],
                "partition_spec": partition_spec,
                "metrics": PipelineMetrics(),
                "drain_timeout_s": DRAIN_TIMEOUT_S,
                "poll_timeout_s": 0.01,
            },
            shutdown=10.0,
        )
        self.root = launch(
            ChildSpec(
                id="consumers",
                actor=Supervisor,
                kwargs={
                    "name": "consumers",
                    "children": [consumer],
                    "strategy": Strategy.ONE_FOR_ONE,
                    "backoff": Backoff(initial=0.0),
                    "intensity": Intensity(max_restarts=100, period=60.0),
                    "on_escalate": self.escalations.append,
                    "on_restart": lambda _s, _c: self.epoch.bump(),
                },
                shutdown=15.0,
            )
        )

    def child(self, child_id: str) -> Any:
        return self.root.ask(WhichChild(child_id), timeout=2)

    def wait(self, predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            time.sleep(0.01)
        raise AssertionError(f"condition not met within {timeout}s")

    def start_partition_with_dropped_work(self) -> FakeConsumer:
        """Assign partition 0, deliver offsets 0-2, and let the adapters drop them."""
        fake = self.wait(lambda: self.fakes and self.fakes[0])
        fake.script.put(FakeConsumer.assign(0))
        fake.script.put(FakeConsumer.deliver(0, 0, 1, 2))
        self.wait(lambda: self.adapters.batches)
        return fake

    def restart_elsewhere(self) -> None:
        """What a supervisor does when an adapter restarts: the dropped work is owed again."""
        self.adapters.acking = True
        self.epoch.bump()


@pytest.fixture
def tree(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tree]:
    built = Tree(monkeypatch)
    yield built
    for fake in built.fakes:  # let a hung close() finish so every actor can stop
        fake.close_error, fake.close_gate = None, None
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


# -- defect 6: a drain must keep ticking its owners ------------------------------------


def test_a_shutdown_drain_re_sends_work_a_restart_dropped_mid_drain_at_once(tree: Tree) -> None:
    fake = tree.start_partition_with_dropped_work()
    consumer = tree.child("kafka-consumer")
    reply = pykka.ThreadingFuture()
    consumer.tell(Shutdown(reply))
    assert ObservedPartitionConsumer.drained.wait(3), "the owner was never asked to drain"
    restarted = time.monotonic()
    tree.restart_elsewhere()  # mid-drain: the dropped events must be re-sent and finished

    reply.get(timeout=DRAIN_TIMEOUT_S + 5)
    took = time.monotonic() - restarted
    assert (TOPIC, 0, 3) in fake.stored, "the drained partition's progress was not stored"
    assert took < DRAIN_TIMEOUT_S / 2, f"drain waited {took:.1f}s instead of re-sending"


def test_a_revoke_drain_re_sends_work_a_restart_dropped_mid_drain_at_once(tree: Tree) -> None:
    fake = tree.start_partition_with_dropped_work()
    fake.script.put(FakeConsumer.revoke())
    assert ObservedPartitionConsumer.drained.wait(3), "the owner was never asked to drain"
    restarted = time.monotonic()
    tree.restart_elsewhere()

    tree.wait(lambda: fake.commits, timeout=DRAIN_TIMEOUT_S + 5)
    took = time.monotonic() - restarted
    assert (TOPIC, 0, 3) in fake.stored, "the revoked partition's progress was not stored"
    assert took < DRAIN_TIMEOUT_S / 2, f"the rebalance stalled {took:.1f}s in the drain"
    tree.wait(lambda: tree.child(partition_child_id(TOPIC, 0)) is None)


def test_a_drain_that_times_out_still_stores_what_was_finished_meanwhile(tree: Tree) -> None:
    fake = tree.wait(lambda: tree.fakes and tree.fakes[0])
    fake.script.put(FakeConsumer.assign(0))
    fake.script.put(FakeConsumer.deliver(0, 0, 1, 2, 3))
    tree.wait(lambda: tree.adapters.batches)
    reply = pykka.ThreadingFuture()
    tree.child("kafka-consumer").tell(Shutdown(reply))
    assert ObservedPartitionConsumer.drained.wait(3), "the owner was never asked to drain"
    tree.child(partition_child_id(TOPIC, 0)).tell(Done((0, 1, 2)))  # 3 never finishes

    reply.get(timeout=2 * DRAIN_TIMEOUT_S + 5)
    assert (TOPIC, 0, 3) in fake.stored, "offsets 0-2, finished during the drain, were discarded"


# -- defect 7: a failing cleanup must not hide the consumer's death --------------------


@pytest.mark.parametrize("cleanup", ["raises", "hangs"])
def test_the_supervisor_learns_of_a_crash_whatever_close_does(tree: Tree, cleanup: str) -> None:
    fake = tree.wait(lambda: tree.fakes and tree.fakes[0])
    fake.script.put(FakeConsumer.assign(0))
    tree.wait(lambda: tree.child(partition_child_id(TOPIC, 0)))
    if cleanup == "raises":
        fake.close_error = RuntimeError("close failed")
    else:
        fake.close_gate = threading.Event()
    old = tree.child("kafka-consumer")

    old.tell(InjectFailure("boom"))

    new = tree.wait(lambda: (ref := tree.child("kafka-consumer")) and ref != old and ref)
    assert new.is_alive() and len(tree.fakes) == 2, "no replacement consumer subscribed"
    tree.wait(lambda: fake.close_calls == 1)  # cleanup runs (or hangs) after the report
    if fake.close_gate is not None:
        fake.close_gate.set()
    # Cleanup still ran after the report: the dead consumer's partition owner is stopped.
    tree.wait(lambda: tree.child(partition_child_id(TOPIC, 0)) is None)
    assert tree.escalations == []


# -- a partition owner's start failure stays local --------------------------------------


class Nobody:
    def tell(self, _message: Any) -> None:
        pass


def test_a_late_start_of_a_replaced_owner_does_not_take_the_partition_back(tree: Tree) -> None:
    # Built first, so older: an owner whose start timed out, replaced, and now being stopped.
    stale = PartitionConsumer.start(
        topic=TOPIC, partition=0, consumer=Nobody(), adapters=tree.adapters, epoch=tree.epoch
    )
    fake = tree.wait(lambda: tree.fakes and tree.fakes[0])
    fake.script.put(FakeConsumer.assign(0))
    owner = tree.wait(lambda: tree.child(partition_child_id(TOPIC, 0)))
    consumer = tree.child("kafka-consumer")

    older = stale.ask(ProxyGetAttr(attr_path=("_incarnation",)), timeout=2)
    consumer.tell(PartitionStarted(TOPIC, 0, stale, older))
    consumer.ask(ProxyGetAttr(attr_path=("_running",)), timeout=2)  # handled by now
    fake.script.put(FakeConsumer.deliver(0, 0, 1))

    batch = tree.wait(lambda: tree.adapters.batches and tree.adapters.batches[-1])
    assert batch.owner.actor_urn == owner.actor_urn, "the replaced owner took the partition"
