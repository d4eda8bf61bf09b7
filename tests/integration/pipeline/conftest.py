"""Run a real pipeline process against the real stack for the pipeline tests.

The process is the one the Procfile runs (``python -m feedline.pipeline``), with its own
consumer group and health port so it never collides with a developer's ``make up``, and
with fault injection on so tests can crash its actors through ``POST /debug/fail``. Its
group starts at the log end (tests/kafka_groups.py): however much history the stack
holds, the pipeline is up and caught up in seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from feedline.supervisors import find_node
from tests.integration.http.conftest import (  # noqa: F401 - fixtures shared with HTTP tests
    ApiUser,
    app,
    client,
    database,
    query,
    signup,
)
from tests.kafka_groups import log_ends, start_group_at_log_end


def free_port() -> int:
    """Return a loopback port nobody listens on now (benchmarks and other suites use fixed
    ones; a collision would make the pipeline under test fail to start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# FEEDLINE_TEST_GROUP lets two suites share one stack without splitting one group.
GROUP = os.environ.get("FEEDLINE_TEST_GROUP", "feedline-test-pipeline")
SHUTDOWN_BOUND_S = 75.0  # above the pipeline's own stop bound (55 s by default)


class Pipeline:
    """A running pipeline process and its health port."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, port: int):
        self.process = process
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if path.startswith("/health") else body.decode()

    def fail(self, actor: str) -> None:
        """Crash one actor of the tree by its child id (e.g. writer-0)."""
        req = urllib.request.Request(f"{self.url}/debug/fail?actor={actor}", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 202

    def node(self, child_id: str) -> dict[str, Any]:
        """Return one node of the live actor tree by its child id."""
        found = find_node(self.get("/health/actors")["tree"], child_id)
        assert found is not None, f"{child_id} not in the tree"
        return found


def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Retry ``check`` until it returns without an AssertionError; re-raise at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


def start_pipeline(log: Path, port: int, group: str, respawn: bool = False, **env: str) -> Pipeline:
    """Start ``python -m feedline.pipeline [--respawn]``; wait until it owns partitions."""
    full_env = dict(
        os.environ,
        FEEDLINE_PIPELINE_PORT=str(port),
        FEEDLINE_KAFKA_GROUP=group,
        FEEDLINE_FAULT_INJECTION="1",
        **env,
    )
    argv = [sys.executable, "-m", "feedline.pipeline", *(["--respawn"] if respawn else [])]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=full_env, stdout=out, stderr=out)
    running = Pipeline(process, log, port)

    def assigned() -> None:
        assert process.poll() is None, f"pipeline exited; see {log}"
        consumer = running.node("kafka-consumer")
        assert consumer["stats"]["partitions"], "no partitions assigned yet"

    try:
        eventually(lambda: _tolerate_connection_errors(assigned), timeout=90)
    except BaseException:
        process.kill()
        raise
    return running


def stop_pipeline(running: Pipeline) -> int:
    """SIGTERM the pipeline; return its exit code (killing it if it overruns the bound)."""
    running.process.send_signal(signal.SIGTERM)
    try:
        return running.process.wait(timeout=SHUTDOWN_BOUND_S)
    finally:
        if running.process.poll() is None:
            running.process.kill()


def assert_caught_up(
    running: Pipeline, ends: dict[tuple[str, int], int], owned_only: bool = False
) -> None:
    """Fail unless the pipeline has stored, or its group committed, offsets up to ``ends``
    on every partition (``owned_only``: on every partition this process owns now)."""
    stats = running.node("kafka-consumer")["stats"]
    assert "partitions" in stats, "consumer busy"
    done = {
        (p["topic"], p["partition"]): max(p["stored_offset"] or 0, p["committed_offset"] or 0)
        for p in stats["partitions"]
    }
    if owned_only:
        ends = {tp: end for tp, end in ends.items() if tp in done}
    behind = {tp for tp, end in ends.items() if end and done.get(tp, 0) < end}
    assert not behind, f"{len(behind)} partitions still behind"


def start_test_pipeline(log: Path, port: int, group: str, settings: Any, **env: str) -> Pipeline:
    """Start a pipeline in ``group`` from the log end; return it once it is caught up.

    If the group already has a live member (the other suite's pipeline in the shared
    test group), the new one joins it where it is instead, and is caught up once the
    partitions it was given are.
    """
    shared = start_group_at_log_end(settings, group) is None
    running = start_pipeline(log, port, group, **env)
    try:
        ends = log_ends(settings)
        eventually(lambda: assert_caught_up(running, ends, shared), timeout=300, interval=0.5)
    except BaseException:
        stop_pipeline(running)
        raise
    return running


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory, settings: Any) -> Iterator[Pipeline]:
    log = tmp_path_factory.mktemp("pipeline") / "pipeline.log"
    running = start_test_pipeline(log, free_port(), GROUP, settings)
    try:
        yield running
    finally:
        # Also when the setup fails: a leftover pipeline in GROUP would take half the
        # partitions from every later run's pipeline, which then never catches up.
        code = stop_pipeline(running)
    assert code == 0, f"pipeline did not stop cleanly ({code}); see {log}"


def _tolerate_connection_errors(check: Callable[[], None]) -> None:
    try:
        check()
    except OSError as exc:  # health port not open yet
        raise AssertionError(str(exc)) from exc
