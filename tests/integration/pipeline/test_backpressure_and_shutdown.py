"""Backpressure, graceful stops, and pipelines that start fast whatever the stack has seen.

Each test runs its own pipeline process in a group of its own, started at the log end
(tests/kafka_groups.py), and makes the events it needs itself, by plain SQL: rows of
``users``, one change event each. Nothing here depends on the stack's earlier history.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from feedline.stack.procs import alive
from tests.integration.pipeline.conftest import (
    GROUP,
    assert_caught_up,
    eventually,
    free_port,
    log_ends,
    start_pipeline,
    start_test_pipeline,
    stop_pipeline,
)
from tests.kafka_groups import start_group_at_log_end

pytestmark = pytest.mark.integration


def _gauge(metrics: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


def _committed(settings: Any, group: str, tps: list[tuple[str, int]]) -> dict:
    probe = Consumer({"bootstrap.servers": settings.kafka.bootstrap, "group.id": group})
    got = probe.committed([TopicPartition(t, p) for t, p in tps], timeout=10)
    probe.close()
    return {(tp.topic, tp.partition): tp.offset for tp in got}


def add_users(pg_conn: Any, n: int) -> str:
    """Insert ``n`` users in one transaction (``n`` change events); return their prefix."""
    prefix = f"h{secrets.token_hex(4)}"
    with pg_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO users (handle) SELECT %s || '_' || g FROM generate_series(1, %s) g",
            (prefix, n),
        )
    return prefix


def wait_for_events(settings: Any, since: dict, n: int, timeout: float = 60.0) -> dict:
    """Wait until at least ``n`` more events than ``since`` are in the CDC topics."""

    def arrived() -> dict:
        ends = log_ends(settings)
        got = sum(ends.values()) - sum(since.values())
        assert got >= n, f"{got} of {n} events in Kafka yet"
        return ends

    return eventually(arrived, timeout=timeout, interval=0.2)


def test_bounded_in_flight_pauses_then_a_graceful_stop_commits_all(
    settings: Any, tmp_path: Path, pg_conn: Any
) -> None:
    group = f"{GROUP}-backpressure"
    start = start_group_at_log_end(settings, group)
    assert start is not None, f"a leftover pipeline is running in {group}"
    add_users(pg_conn, 300)  # ~50 events a partition: far above the bound of 4
    ends = wait_for_events(settings, start, 300)
    running = start_pipeline(tmp_path / "pipeline.log", free_port(), group,
                             FEEDLINE_MAX_IN_FLIGHT="4")  # fmt: skip
    paused_seen = 0.0
    try:

        def caught_up() -> None:
            nonlocal paused_seen
            metrics = running.get("/metrics")
            # The counter, not the gauge: a pause can start and end between two scrapes.
            paused_seen = _gauge(metrics, "feedline_partition_pauses_total")
            assert_caught_up(running, ends)

        eventually(caught_up, timeout=180, interval=0.05)
    finally:
        code = stop_pipeline(running)
    assert code == 0, f"no graceful stop ({code}); see {running.log}"
    assert paused_seen > 0, "no partition was ever paused with an in-flight bound of 4"
    committed = _committed(settings, group, list(ends))
    for tp, end in ends.items():
        if end:
            assert committed[tp] >= end, (tp, committed[tp], end)


HISTORY = 20_000


def test_a_pipeline_fixture_starts_at_once_after_a_burst_of_unrelated_history(
    settings: Any, tmp_path: Path, pg_conn: Any, cassandra_session: Any
) -> None:
    """A used stack: 20,000 events nobody's test cares about, then a test pipeline.

    It comes up caught up in seconds having replayed none of them (before, a group
    replayed everything it had not seen: minutes on a used stack), and still processes
    what comes after its start.
    """
    before = log_ends(settings)
    add_users(pg_conn, HISTORY)
    burst = wait_for_events(settings, before, HISTORY, timeout=90)

    began = time.monotonic()
    running = start_test_pipeline(tmp_path / "pipeline.log", free_port(), f"{GROUP}-history",
                                  settings)  # fmt: skip
    try:
        took = time.monotonic() - began
        replayed = running.node("kafka-consumer")["stats"]["messages_processed"]
        assert replayed < 100, f"the new pipeline replayed {replayed} events of history"
        assert took < 45, f"the pipeline fixture took {took:.0f}s to come up"
        prefix = add_users(pg_conn, 1)  # made after the start: must be processed

        def applied() -> None:
            rows = cassandra_session.execute(
                "SELECT handle FROM users_by_id WHERE user_id = %s", (_user_id(pg_conn, prefix),)
            ).one()
            assert rows is not None and rows.handle == f"{prefix}_1"

        eventually(applied, timeout=30)
    finally:
        code = stop_pipeline(running)
    assert code == 0, f"no graceful stop ({code}); see {running.log}"
    _leave_no_backlog(settings, before, burst)


def _leave_no_backlog(settings: Any, before: dict, burst: dict) -> None:
    """Keep the burst from delaying later tests: move the shared test group past it, or,
    if its session pipeline runs, wait until that has worked through it."""
    if start_group_at_log_end(settings, GROUP) is not None:
        return

    grown = [tp for tp, end in burst.items() if end > before.get(tp, 0)]

    def through() -> None:
        committed = _committed(settings, GROUP, grown)
        behind = [tp for tp in grown if committed[tp] < burst[tp]]
        assert not behind, f"{GROUP} still behind the burst on {len(behind)} partitions"

    eventually(through, timeout=90, interval=0.5)


def _user_id(pg_conn: Any, prefix: str) -> int:
    with pg_conn.cursor() as cur:
        cur.execute("SELECT id FROM users WHERE handle = %s", (f"{prefix}_1",))
        return cur.fetchone()[0]


def test_the_worker_stops_when_its_respawn_loop_is_sigkilled(settings: Any, tmp_path: Path) -> None:
    group = f"{GROUP}-respawn"
    assert start_group_at_log_end(settings, group) is not None, f"{group} has live members"
    running = start_pipeline(tmp_path / "pipeline.log", free_port(), group, respawn=True)
    loop = running.process
    children = Path(f"/proc/{loop.pid}/task/{loop.pid}/children").read_text().split()
    assert len(children) == 1, children
    worker = int(children[0])
    try:
        loop.kill()  # no chance to forward anything
        loop.wait(5)
        deadline = time.monotonic() + 30
        while alive(worker):
            assert time.monotonic() < deadline, f"worker {worker} outlived its respawn loop"
            time.sleep(0.1)
        log = running.log.read_text()
        assert "received signal 15" in log, "the worker did not get SIGTERM (a graceful stop)"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
