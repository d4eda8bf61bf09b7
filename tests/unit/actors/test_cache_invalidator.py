"""CacheInvalidator while Redis is away: acknowledge anyway, then flush the deferred keys.

The Redis client is a fake that fails on cue (``FakeRedis``): the shared Redis of the real
stack cannot be taken away from one actor without taking it from every other test. Redis
outages on the real stack are covered by the failure suite (test_redis_restart).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
import redis

from feedline import notices
from feedline.actors import cache_invalidator
from feedline.actors.cache_invalidator import CacheInvalidator
from feedline.actors.messages import Done, InvalidateBatch, Record, Work
from feedline.notices import AuthorNotice, EdgeNotice
from feedline.pipeline.metrics import PipelineMetrics
from feedline.strategies.base import Plan


class FakeRedis:
    """Record UNLINKs and PUBLISHes in order; raise ConnectionError while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.unlinked: list[str] = []
        self.published: list[tuple[str, bytes]] = []
        self.order: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    def unlink(self, *keys: str) -> int:
        with self._lock:
            self.calls += 1
            if self.down:
                raise redis.ConnectionError("Connection refused")
            self.unlinked += keys
        return len(keys)

    def close(self) -> None:
        pass


class FakePipeline:
    """A pipeline of the fake: queued calls run in order on execute (all fail while down)."""

    def __init__(self, fake: FakeRedis) -> None:
        self._fake = fake
        self._queued: list[tuple[str, tuple]] = []

    def unlink(self, *keys: str) -> None:
        self._queued.append(("unlink", keys))

    def publish(self, channel: str, message: bytes) -> None:
        self._queued.append(("publish", (channel, message)))

    def execute(self) -> list:
        fake = self._fake
        with fake._lock:
            fake.calls += 1
            if fake.down:
                raise redis.ConnectionError("Connection refused")
            for op, args in self._queued:
                fake.order.append(op)
                if op == "unlink":
                    fake.unlinked += args
                else:
                    fake.published.append(args)
        return [1] * len(self._queued)


class Owner:
    """Stands in for a PartitionConsumer: keeps the offsets acknowledged to it."""

    def __init__(self) -> None:
        self.done: list[int] = []

    def tell(self, message: Done) -> None:
        self.done += message.offsets


def batch(offset: int, *keys: str, owner: Owner, told: tuple = ()) -> InvalidateBatch:
    record = Record("feedline.public.shards", 0, offset, b"{}", b"{}")
    plan = Plan(invalidations=keys, notices=told)
    return InvalidateBatch(frozenset(keys), (Work(record, plan, owner),))


def wait_until(predicate: Callable[[], Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        time.sleep(0.01)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRedis]:
    client = FakeRedis()
    monkeypatch.setattr(cache_invalidator.redis.Redis, "from_url", lambda *_a, **_k: client)
    yield client
    pykka.ActorRegistry.stop_all(block=True, timeout=5)


def test_keys_deferred_while_redis_is_down_are_deleted_once_it_is_back_without_new_events(
    fake: FakeRedis,
) -> None:
    invalidator = CacheInvalidator.start("redis://unused", PipelineMetrics(), backoff_s=0.001)
    owner = Owner()
    fake.down = True

    invalidator.tell(batch(7, "fl:feed:1", "fl:shard:9", owner=owner))

    wait_until(lambda: owner.done == [7], timeout=2)  # acknowledged although Redis is down
    assert fake.unlinked == []
    assert invalidator.proxy().health().get(timeout=2)["pending_invalidations"] == 2
    fake.down = False  # Redis is back, and no further event arrives

    wait_until(lambda: sorted(fake.unlinked) == ["fl:feed:1", "fl:shard:9"], timeout=5)
    health = invalidator.proxy().health().get(timeout=2)
    assert (health["pending_invalidations"], health["redis_up"]) == (0, True)


def test_while_redis_stays_down_the_deferred_keys_are_retried_about_once_a_second(
    fake: FakeRedis,
) -> None:
    invalidator = CacheInvalidator.start("redis://unused", PipelineMetrics(), backoff_s=0.001)
    owner = Owner()
    fake.down = True
    invalidator.tell(batch(1, "fl:feed:2", owner=owner))
    wait_until(lambda: owner.done == [1], timeout=2)
    tried = fake.calls

    time.sleep(2.6)

    assert 1 <= fake.calls - tried <= 4, "not retried, or retried in a tight loop"
    assert invalidator.proxy().health().get(timeout=2)["pending_invalidations"] == 1


def test_notices_go_out_after_the_deletes_and_wait_out_an_outage_like_keys(
    fake: FakeRedis,
) -> None:
    """A stream re-reads on a notice, so the notice must follow the deletes (same round
    trip, after them); a notice that Redis refused is published once Redis is back."""
    invalidator = CacheInvalidator.start("redis://unused", PipelineMetrics(), backoff_s=0.001)
    owner = Owner()
    told = (AuthorNotice(7), EdgeNotice(3, 7))
    invalidator.tell(batch(1, "fl:feed:3", owner=owner, told=told))
    wait_until(lambda: owner.done == [1], timeout=5)
    assert fake.order == ["unlink", "publish"]
    assert [notices.decode(m) for _, m in fake.published] == [list(told)]
    fake.down = True
    invalidator.tell(batch(2, "fl:feed:4", owner=owner, told=(AuthorNotice(8),)))
    wait_until(lambda: owner.done == [1, 2], timeout=5)  # acknowledged while Redis is down
    assert len(fake.published) == 1
    fake.down = False
    wait_until(lambda: len(fake.published) == 2, timeout=5)  # the retry timer, no new event
    assert notices.decode(fake.published[1][1]) == [AuthorNotice(8)]
    assert fake.published[1][0] == notices.CHANNEL
    invalidator.stop()
