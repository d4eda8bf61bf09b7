"""High availability: two pipeline processes in one consumer group share the partitions;
SIGKILL one under load and the other takes its partitions over (after the group's
session timeout, 6 s by settings); verify then reports zero differences."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.failure.harness import FaultRun, Monitor
from tests.failure.procs import Pipeline
from tests.failure.test_faults import finish

pytestmark = [pytest.mark.failure, pytest.mark.integration]


def owned(p: Pipeline) -> set[tuple[str, int]]:
    return {(x["topic"], x["partition"]) for x in p.partitions()}


def test_the_other_member_takes_over_a_killed_members_partitions(
    settings: Any, web: Any, pipeline: Pipeline, failure_dir: Path, fresh_pg, fresh_cassandra
):
    total = 5 * settings.kafka.partitions
    second = Pipeline(failure_dir / "pipeline-ha.log", respawn=False).start()
    try:
        deadline = time.monotonic() + 90
        while not (owned(second) and len(owned(pipeline) | owned(second)) == total):
            assert time.monotonic() < deadline, "the two members never shared the partitions"
            time.sleep(0.5)
        assert not owned(pipeline) & owned(second), "a partition owned twice"
        taken: list[float] = []

        def inject() -> None:
            second.process.kill()  # SIGKILL: no revoke, no commit; the session must expire

        def during(monitor: Monitor) -> None:
            killed = time.monotonic()
            while len(owned(pipeline)) < total:
                assert time.monotonic() - killed < 60, "partitions never moved"
                time.sleep(0.2)
            taken.append(time.monotonic() - killed)

        run = FaultRun(settings, web, [pipeline, second])
        result, _, load = run.run("HA: member SIGKILL", inject, lambda: None, during)
        result.name = f"HA member SIGKILL (takeover {taken[0]:.1f} s)"
        finish(result, load, fresh_pg, fresh_cassandra)
    finally:
        second.stop()
