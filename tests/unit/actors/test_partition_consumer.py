"""PartitionConsumer bookkeeping: hand out, acknowledge, report, re-send, drain."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest

from feedline.actors.epoch import RestartEpoch
from feedline.actors.messages import (
    AdaptBatch,
    Done,
    Drain,
    PartitionStarted,
    Progress,
    Record,
    Records,
    Tick,
)
from feedline.actors.partition_consumer import PartitionConsumer


class Recorder:
    """Stands in for an actor ref or a router: keeps what it was told."""

    def __init__(self) -> None:
        self.told: list[Any] = []
        self._lock = threading.Lock()

    def tell(self, *args: Any) -> bool:
        with self._lock:
            self.told.append(args[-1])
        return True

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [m for m in self.told if isinstance(m, kind)]


def rec(offset: int) -> Record:
    return Record("feedline.public.shards", 0, offset, b"{}", b"{}")


@pytest.fixture
def parts() -> Any:
    consumer, adapters, epoch = Recorder(), Recorder(), RestartEpoch()
    ref = PartitionConsumer.start(
        topic="feedline.public.shards",
        partition=0,
        consumer=consumer,
        adapters=adapters,
        epoch=epoch,
    )
    yield ref, consumer, adapters, epoch
    pykka.ActorRegistry.stop_all()


def sync(ref: Any) -> None:
    """Wait until the actor has handled everything told so far."""
    ref.ask(Tick())


def test_announces_itself_and_hands_records_to_an_adapter(parts: Any) -> None:
    ref, consumer, adapters, _ = parts
    ref.tell(Records((rec(5), rec(6))))
    ref.tell(Records((rec(6), rec(7))))  # 6 again: a replay is not handed out twice
    sync(ref)
    assert consumer.of(PartitionStarted)[0].ref.actor_urn == ref.actor_urn
    sent = [r.offset for batch in adapters.of(AdaptBatch) for r in batch.records]
    assert sent == [5, 6, 7]


def test_reports_the_watermark_only_past_finished_offsets(parts: Any) -> None:
    ref, consumer, _, _ = parts
    ref.tell(Records((rec(5), rec(6), rec(9))))
    ref.tell(Done((6,)))
    sync(ref)
    assert all(p.committable is None for p in consumer.of(Progress))
    ref.tell(Done((5, 9)))
    sync(ref)
    last = consumer.of(Progress)[-1]
    assert (last.committable, last.in_flight, last.received) == (10, 0, 3)


def test_a_restart_elsewhere_makes_it_resend_only_what_is_pending(parts: Any) -> None:
    ref, _, adapters, epoch = parts
    ref.tell(Records((rec(1), rec(2), rec(3))))
    ref.tell(Done((2,)))
    sync(ref)
    epoch.bump()
    ref.tell(Tick())
    sync(ref)
    batches = adapters.of(AdaptBatch)
    assert [r.offset for r in batches[-1].records] == [1, 3]
    ref.tell(Tick())  # nothing new happened: no second re-send
    sync(ref)
    assert len(adapters.of(AdaptBatch)) == len(batches)


def test_drain_answers_once_everything_is_done(parts: Any) -> None:
    ref, _, _, _ = parts
    ref.tell(Records((rec(1), rec(2))))
    reply = pykka.ThreadingFuture()
    ref.tell(Drain(reply))
    sync(ref)
    with pytest.raises(pykka.Timeout):
        reply.get(timeout=0.05)
    ref.tell(Done((1, 2)))
    assert reply.get(timeout=2) == 3


def test_drain_with_nothing_in_flight_answers_at_once(parts: Any) -> None:
    ref, _, _, _ = parts
    reply = pykka.ThreadingFuture()
    ref.tell(Drain(reply))
    assert reply.get(timeout=2) is None
