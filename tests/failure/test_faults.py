"""One fault at a time under a steady API write load; after each, zero differences.

Each test breaks one thing while the load runs, checks that the breakage was visible
(health and metrics say what is down), heals it, and then requires: ``verify`` clean for
the run's users, no duplicate in any feed, no acknowledged write lost, nothing
half-written. The measurements are printed at the end of the run.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer

from feedline.supervisors import find_node
from tests.failure import checks
from tests.failure.conftest import RESULTS, Services
from tests.failure.harness import FaultResult, FaultRun, Monitor
from tests.failure.load import Load
from tests.failure.procs import Pipeline

pytestmark = [pytest.mark.failure, pytest.mark.integration]


def finish(result: FaultResult, load: Load, fresh_pg: Any, fresh_cassandra: Any) -> None:
    """Record the measurements, then check the source of truth and the feeds."""
    RESULTS.append(result)
    pg = fresh_pg()
    assert checks.lost_acknowledged_writes(pg, load) == []
    assert checks.half_written(pg, load.user_ids) == []
    assert checks.duplicated_feed_rows(fresh_cassandra(), load.user_ids) == []
    assert result.requests["ok"] > 0


def wait_seen(monitor: Monitor, *words: str, timeout: float = 30.0) -> None:
    """Wait until health or metrics showed ``words`` while the fault lasts."""
    deadline = time.monotonic() + timeout
    while not monitor.saw(*words):
        assert time.monotonic() < deadline, f"never saw {words}: {dict(monitor.observed)}"
        time.sleep(0.2)


def test_pipeline_sigkill(fault_run: FaultRun, pipeline: Pipeline, fresh_pg, fresh_cassandra):
    killed: list[int] = []

    def during(monitor: Monitor) -> None:
        # The respawn loop restarts the worker; while it is gone, health says so.
        wait_seen(monitor, "unreachable")
        wait_seen(monitor, "/health/actors 503")

    def heal() -> None:
        deadline = time.monotonic() + 60
        while pipeline.worker_pid() in (None, *killed) or not pipeline.partitions():
            assert time.monotonic() < deadline, "pipeline not back"
            time.sleep(0.2)

    result, _, load = fault_run.run(
        "pipeline SIGKILL", lambda: killed.append(pipeline.kill_worker()), heal, during
    )
    finish(result, load, fresh_pg, fresh_cassandra)


def test_actor_crash_mid_batch(fault_run: FaultRun, pipeline: Pipeline, fresh_pg, fresh_cassandra):
    ids = ("writer-0", "adapter-1", "invalidator-0")

    def restarts() -> dict[str, int]:
        tree = pipeline.actors()["tree"]
        return {i: find_node(tree, i)["restarts"] for i in ids}

    before = restarts()

    def inject() -> None:
        for actor in ids:
            status = _post(f"{pipeline.url}/debug/fail?actor={actor}")
            assert status == 202, actor

    result, _, load = fault_run.run("actor crash", inject, lambda: None)
    after = restarts()
    tree = pipeline.actors()["tree"]
    for actor in ids:
        assert after[actor] >= before[actor] + 1, actor
        assert "injected failure" in (find_node(tree, actor)["last_error"] or "")
    assert result.restarts >= len(ids)
    finish(result, load, fresh_pg, fresh_cassandra)


def test_cassandra_stopped_20s(fault_run: FaultRun, services: Services, fresh_pg, fresh_cassandra):
    stopped = [0.0]

    def inject() -> None:
        stopped[0] = time.monotonic()
        services.stop("cassandra")

    def during(monitor: Monitor) -> None:
        wait_seen(monitor, "cassandra")
        time.sleep(max(0.0, 20.0 - (time.monotonic() - stopped[0])))

    result, _, load = fault_run.run(
        "cassandra stop 20s", inject, lambda: services.start("cassandra"), during
    )
    assert result.cassandra_retries > 0
    finish(result, load, fresh_pg, fresh_cassandra)


def test_cassandra_sigkill(fault_run: FaultRun, services: Services, fresh_pg, fresh_cassandra):
    result, _, load = fault_run.run(
        "cassandra SIGKILL",
        lambda: services.kill("cassandra"),
        lambda: services.start("cassandra"),
        lambda monitor: wait_seen(monitor, "cassandra"),
    )
    assert result.cassandra_retries > 0
    finish(result, load, fresh_pg, fresh_cassandra)


def test_redis_restart(fault_run: FaultRun, services: Services, fresh_pg, fresh_cassandra):
    def during(monitor: Monitor) -> None:
        wait_seen(monitor, "redis down")

    result, _, load = fault_run.run(
        "redis stop+start", lambda: services.stop("redis"), lambda: services.start("redis"), during
    )
    assert result.redis_failures > 0
    finish(result, load, fresh_pg, fresh_cassandra)


def test_connect_sigkill(fault_run: FaultRun, services: Services, fresh_pg, fresh_cassandra):
    def during(monitor: Monitor) -> None:
        time.sleep(3.0)  # writes keep committing in PostgreSQL meanwhile

    result, _, load = fault_run.run(
        "connect SIGKILL",
        lambda: services.kill("connect"),
        lambda: services.start("connect"),
        during,
    )
    finish(result, load, fresh_pg, fresh_cassandra)


def test_kafka_restart(fault_run: FaultRun, services: Services, fresh_pg, fresh_cassandra):
    def during(monitor: Monitor) -> None:
        wait_seen(monitor, "kafka")

    result, _, load = fault_run.run(
        "kafka restart", lambda: services.stop("kafka"), lambda: services.start("kafka"), during
    )
    finish(result, load, fresh_pg, fresh_cassandra)


def test_postgres_restart(fault_run: FaultRun, services: Services, fresh_pg, fresh_cassandra):
    def during(monitor: Monitor) -> None:
        wait_seen(monitor, "/health 503", "postgresql")

    result, _, load = fault_run.run(
        "postgres restart",
        lambda: services.stop("postgres"),
        lambda: services.start("postgres"),
        during,
    )
    assert result.requests["failed"] > 0
    finish(result, load, fresh_pg, fresh_cassandra)


def test_poison_event(fault_run: FaultRun, settings: Any, fresh_pg, fresh_cassandra):
    def inject() -> None:
        producer = Producer({"bootstrap.servers": settings.kafka.bootstrap})
        poison = json.dumps({"op": "c", "after": {"id": uuid.uuid4().hex}}).encode()
        for partition in range(settings.kafka.partitions):
            producer.produce(settings.kafka.topic("shards"), key=b'{"id": 0}', value=poison,
                             partition=partition)  # fmt: skip
        assert producer.flush(10) == 0

    result, _, load = fault_run.run("poison event", inject, lambda: None)
    assert result.dead_lettered >= settings.kafka.partitions
    finish(result, load, fresh_pg, fresh_cassandra)


def _post(url: str) -> int:
    import urllib.request

    req = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status
