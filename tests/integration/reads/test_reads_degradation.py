"""Reads degrade and recover: Redis stopped mid-test, Cassandra stopped with a warm cache.

Services are stopped and started with the stack launcher's own functions, only Redis and
Cassandra, always restarted in ``finally``: the stack is shared, so outages stay short.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import falcon.testing
import pytest

from feedline.db import Database
from feedline.http.app import create_app, create_ops_app
from feedline.http.deps import Deps
from feedline.http.health import Check
from feedline.readmodel.model import read_model
from feedline.stack.lifecycle import services
from tests.integration.pipeline.conftest import eventually
from tests.integration.reads.conftest import fake_handle

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(settings: Any) -> dict[str, Any]:
    return {svc.name: svc for svc in services(settings)}


@pytest.fixture
def deps(settings: Any, database: Database) -> Iterator[Deps]:
    reads = read_model(settings, database)
    checks = [Check("cassandra", reads.store.ping), Check("redis", reads.cache.ping, False)]
    yield Deps(settings=settings, db=database, reads=reads, checks=checks)
    reads.store.close()
    reads.cache.close()


def restart(svc: Any, settings: Any) -> None:
    if svc.pid() is None:
        svc.start()
    svc.wait_ready(settings.stack.start_timeout_s)


def test_redis_stopped_then_started_mid_test(deps, stack, settings, signup, seeder):
    client = falcon.testing.TestClient(create_app(deps))
    reader = signup()
    author = seeder.base - 1
    seeder.author(author, fake_handle())
    items = seeder.feed(reader.id, author, 40, datetime(2024, 2, 1))
    want = [sid for _, sid in sorted(items, reverse=True)][:20]
    first = client.simulate_get("/v1/feed", headers=reader.headers)
    assert [i["id"] for i in first.json["items"]] == want
    redis = stack["redis"]
    try:
        redis.stop()
        started = time.perf_counter()
        for _ in range(50):
            resp = client.simulate_get("/v1/feed", headers=reader.headers)
            assert resp.status_code == 200, resp.text
            assert [i["id"] for i in resp.json["items"]] == want
        per_request_ms = (time.perf_counter() - started) * 1000 / 50
        print(f"feed from Cassandra with Redis down: {per_request_ms:.2f} ms/request")
        assert deps.reads.cache.breaker.failing
        ops = falcon.testing.TestClient(create_ops_app(deps))
        health = ops.simulate_get("/health/ready")
        assert health.status_code == 200 and health.json["status"] == "degraded"
        assert health.json["checks"]["redis"]["ok"] is False
        metrics = ops.simulate_get("/metrics").text
        assert "feedline_cache_redis_up 0.0" in metrics
        assert "feedline_cache_bypassed_total" in metrics
    finally:
        restart(redis, settings)

    def recovered() -> None:
        resp = client.simulate_get("/v1/feed", headers=reader.headers)
        assert resp.status_code == 200 and not deps.reads.cache.breaker.failing

    eventually(recovered, timeout=15)
    ready = falcon.testing.TestClient(create_ops_app(deps)).simulate_get("/health/ready")
    assert ready.json["checks"]["redis"]["ok"] is True


def test_cassandra_stopped_with_a_warm_cache(deps, stack, settings, signup, seeder):
    client = falcon.testing.TestClient(create_app(deps))
    warm, cold = signup(), signup()
    author = seeder.base - 1
    seeder.author(author, fake_handle())
    seeder.feed(warm.id, author, 30, datetime(2024, 3, 1))
    seeder.feed(cold.id, author, 150, datetime(2024, 3, 2))
    page = client.simulate_get("/v1/feed", headers=warm.headers)
    assert page.status_code == 200 and len(page.json["items"]) == 20
    cassandra = stack["cassandra"]
    try:
        cassandra.stop()
        again = client.simulate_get("/v1/feed", headers=warm.headers)
        assert again.status_code == 200 and again.json == page.json
        # Nothing cached for this feed: a JSON 503, quickly, not a hang or a 500.
        started = time.perf_counter()
        resp = client.simulate_get("/v1/feed", headers=cold.headers)
        assert resp.status_code == 503, resp.text
        assert (
            resp.json["title"] == "Service unavailable" and "cassandra" in resp.json["description"]
        )
        assert time.perf_counter() - started < 5
        ops = falcon.testing.TestClient(create_ops_app(deps))
        assert ops.simulate_get("/health/ready").status_code == 503
    finally:
        restart(cassandra, settings)

    def recovered() -> None:
        resp = client.simulate_get("/v1/feed", headers=cold.headers)
        assert resp.status_code == 200, resp.text
        assert len(resp.json["items"]) == 20

    eventually(recovered, timeout=60, interval=1.0)
