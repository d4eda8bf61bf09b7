"""Backpressure pauses partitions; SIGTERM drains, commits everything done, and exits 0.

A fresh consumer group re-reads every CDC topic from the start with a tiny in-flight
bound, so partitions must pause and resume many times; it must still finish, and after a
graceful stop the group's committed offsets must be the log ends (nothing done is lost,
nothing pending is committed).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.pipeline.conftest import (
    assert_caught_up,
    eventually,
    free_port,
    log_ends,
    start_pipeline,
    stop_pipeline,
)

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


def test_bounded_in_flight_pauses_then_a_graceful_stop_commits_all(
    settings: Any, tmp_path: Path
) -> None:
    group = f"feedline-test-backpressure-{uuid.uuid4().hex[:8]}"
    ends = log_ends(settings)
    assert sum(ends.values()) > 0, "the CDC topics hold no events to replay"
    log = tmp_path / "pipeline.log"
    running = start_pipeline(log, free_port(), group, FEEDLINE_MAX_IN_FLIGHT="4")
    paused_seen = 0.0
    try:

        def caught_up() -> None:
            nonlocal paused_seen
            metrics = running.get("/metrics")
            paused_seen = max(paused_seen, _gauge(metrics, "feedline_paused_partitions"))
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
