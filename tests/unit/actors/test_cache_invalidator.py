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

from feedline.actors import cache_invalidator
from feedline.actors.cache_invalidator import CacheInvalidator
from feedline.actors.messages import Done, InvalidateBatch, Record, Work
from feedline.pipeline.metrics import PipelineMetrics
from feedline.strategies.base import Plan


class FakeRedis:
    """Record UNLINKs; raise ConnectionError while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.unlinked: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()

    def unlink(self, *keys: str) -> int:
        with self._lock:
            self.calls += 1
            if self.down:
                raise redis.ConnectionError("Connection refused")
            self.unlinked += keys
        return len(keys)

    def close(self) -> None:
        pass


class Owner:
    """Stands in for a PartitionConsumer: keeps the offsets acknowledged to it."""

    def __init__(self) -> None:
        self.done: list[int] = []

    def tell(self, message: Done) -> None:
        self.done += message.offsets


def batch(offset: int, *keys: str, owner: Owner) -> InvalidateBatch:
    record = Record("feedline.public.shards", 0, offset, b"{}", b"{}")
    return InvalidateBatch(frozenset(keys), (Work(record, Plan(invalidations=keys), owner),))


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
