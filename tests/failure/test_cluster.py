"""The replicated cluster (``FEEDLINE_TOPOLOGY=cluster``, ``make test-cluster``): one node of
a replicated service SIGKILLed under the mixed load, restarted after ``DOWN_S``.

Each run sends RATE mixed writes and reads per second through the API with a freshness
probe beside it (tests/failure/freshness.py: API 201 -> in a follower's ``GET /v1/feed``),
and ends as every failure run does: ``verify`` at zero differences for the run's users, no
duplicate in any feed, no acknowledged write lost, nothing half-written. A node loss must
cost the user nothing either: no failed write (PostgreSQL is not touched by it) and no failed
feed read. Freshness is reported, not asserted (timing goals belong to benchmarks); so is
the time from the node's return to full redundancy, which each test waits for.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from feedline.errors import StackError
from feedline.stack.lifecycle import Stack, wait_ring
from tests.failure import cluster
from tests.failure.conftest import Services
from tests.failure.harness import FaultResult, FaultRun
from tests.failure.procs import GROUP
from tests.failure.test_faults import finish

pytestmark = [pytest.mark.cluster, pytest.mark.failure, pytest.mark.integration]

# Writes and reads per second (a fifth are reads). The cluster carries 100/s with no fault,
# but not with a node lost on this box: at 100/s two runs' final verify passed the 300 s
# test timeout (README, High availability). At 25/s the faults are what is measured.
RATE = 25.0
DOWN_S = 20.0  # how long the node stays dead
REDUNDANT_WITHIN_S = 120.0  # bound on the wait for every replica to be back


@pytest.fixture
def cluster_run(fault_run: FaultRun) -> FaultRun:
    fault_run.rate_per_s, fault_run.threads, fault_run.max_ops = RATE, 8, 20_000
    fault_run.freshness = True
    return fault_run


def nothing_lost_by_users(result: FaultResult) -> None:
    """No write failed (PostgreSQL is not the node lost) and no feed read failed."""
    r, f = result.requests, result.freshness
    assert r["failed"] == 0, r
    assert r["read_failed"] == 0, r
    assert f["read_failures"] == 0 and f["post_failures"] == 0, f
    assert f["run"]["not_seen"] == 0, f


def wait_for(check: Any, what: str, timeout: float) -> None:
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.5)


class Since(threading.Thread):
    """From ``start()``, poll ``check`` until it holds; ``took`` is how long that was."""

    def __init__(self, check: Any, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.check, self.every_s, self.took = check, every_s, None

    def run(self) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < REDUNDANT_WITHIN_S:
            if self.check():
                self.took = time.monotonic() - t0
                return
            time.sleep(self.every_s)


def test_stack_up_waits_for_every_node_to_see_the_others_up(settings, services: Services):
    """``stack up`` migrates only once each node has the other two in its ring and up: CQL
    opens before that, and a migration through a node that had heard of nobody failed in
    CI. A frozen node (SIGSTOP) stays in the others' ``system.peers``; only liveness tells,
    and the wait holds until its bound. Thawed, everyone sees everyone up again (which the
    next tests start from)."""
    nodes = Stack.of(settings).cassandra
    seed, *_, frozen = nodes
    wait_ring(nodes, timeout=60.0)
    os.kill(frozen.pid(), signal.SIGSTOP)
    try:
        wait_for(lambda: seed.sees({frozen.host}) is not None, "the seed to see it down", 60)
        with pytest.raises(StackError, match=f"{seed.name}: not in one ring"):
            wait_ring(nodes, timeout=2.0)
    finally:
        os.kill(frozen.pid(), signal.SIGCONT)
    wait_ring(nodes, timeout=60.0)


def test_cassandra_node_sigkill(cluster_run: FaultRun, services: Services, settings,
                                fresh_pg, fresh_cassandra):  # fmt: skip
    """Quorum reads and writes go on with two of three nodes. Back, the node gets the
    writes it missed as hints from the others; the commit log is periodic on all three, so
    it may also have lost its unsynced tail, which only a repair (or a quorum read of the
    partition) restores: the preview before the repair says whether it did."""
    assert settings.stack.cassandra_commitlog == "periodic"
    *others, node = Stack.of(settings).cassandra  # the last: not the seed
    hints = Since(lambda: not cluster.hints_pending_for(others, node.host), every_s=2.0)

    def heal() -> None:
        services.start(node.name)
        hints.start()

    result, _, load = cluster_run.run(
        f"{node.name} SIGKILL", lambda: services.kill(node.name), heal,
        lambda m: time.sleep(DOWN_S),
    )  # fmt: skip
    hints.join()
    assert hints.took is not None, f"hints for {node.host} still pending"
    keyspace = settings.cassandra.keyspace
    before = cluster.repair_preview(node, keyspace)
    t0 = time.monotonic()
    node.nodetool("repair", "-full", keyspace)
    repaired = time.monotonic() - t0
    assert cluster.repair_preview(node, keyspace) == cluster.IN_SYNC
    result.notes = {
        "hints delivered after return": f"{hints.took:.1f} s",
        "before repair": "in sync" if before == cluster.IN_SYNC else before[:200],
        "full repair": f"{repaired:.1f} s",
    }
    finish(result, load, fresh_pg, fresh_cassandra)
    nothing_lost_by_users(result)


@pytest.mark.parametrize("which", ["leader", "coordinator"])
def test_kafka_broker_sigkill(cluster_run: FaultRun, services: Services, settings, which,
                              fresh_pg, fresh_cassandra):  # fmt: skip
    """Leadership moves to in-sync replicas once the dead broker is fenced; acks=all with
    min.insync.replicas=2 keeps every acknowledged event on two brokers meanwhile.

    ``leader``: the broker leading the most CDC partitions. ``coordinator``: the pipeline's
    group coordinator, whose loss must not expire the group session (at a 6 s session the
    pipeline lost all its partitions and replayed them: a 25 s stall).
    """
    node_id = cluster.busiest_leader(settings) if which == "leader" else cluster.coordinator(
        settings, GROUP)  # fmt: skip
    name = next(k.name for k in Stack.of(settings).kafka if k.node_id == node_id)
    in_sync = Since(lambda: cluster.under_replicated(settings) == 0)

    def heal() -> None:
        services.start(name)
        in_sync.start()

    result, _, load = cluster_run.run(
        f"{name} SIGKILL ({which})", lambda: services.kill(name), heal,
        lambda m: time.sleep(DOWN_S),
    )  # fmt: skip
    in_sync.join()
    assert in_sync.took is not None, "partitions still under-replicated"
    result.notes = {"every partition in sync after return": f"{in_sync.took:.1f} s"}
    finish(result, load, fresh_pg, fresh_cassandra)
    assert result.partitions_lost == 0
    nothing_lost_by_users(result)


def test_connect_worker_sigkill(cluster_run: FaultRun, services: Services, settings,
                                fresh_pg, fresh_cassandra):  # fmt: skip
    """The task moves to the other worker of the group (session timeout, then the
    scheduled rebalance delay); Debezium resumes from the last flushed offset, and the
    events it sends again change nothing."""
    worker = cluster.task_worker(settings)
    assert worker is not None, "the connector's task is not running"
    by_address = {f"{w.host}:{w.port}": w.name for w in Stack.of(settings).connect}
    name = by_address[worker]
    moved: list[float] = []

    def inject() -> None:
        services.kill(name)
        moved.append(time.monotonic())

    def during(monitor: Any) -> None:
        wait_for(lambda: cluster.task_worker(settings) not in (None, worker),
                 "the task to move", REDUNDANT_WITHIN_S)  # fmt: skip
        moved[0] = time.monotonic() - moved[0]

    result, _, load = cluster_run.run(
        f"{name} SIGKILL (task)", inject, lambda: services.start(name), during
    )
    result.notes = {"task moved after": f"{moved[0]:.1f} s"}
    finish(result, load, fresh_pg, fresh_cassandra)
    nothing_lost_by_users(result)
