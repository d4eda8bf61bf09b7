"""Fixtures of the failure suite: its own web and pipeline processes, and the services.

The suite stops and kills the stack's services, so it runs against whatever stack the
environment's settings name (``FEEDLINE_*``): the default one in CI, or a separate
instance while developing (other FEEDLINE_VAR_DIR and ports, see README). Every service
a test stops is started again in a ``finally`` block. tests/conftest.py orders this
suite after every other test but before the stack lifecycle test.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedline.connector import register
from feedline.settings import Settings
from feedline.stack import lifecycle, procs
from feedline.stack.base import Service
from tests.failure.harness import FaultResult, FaultRun
from tests.failure.procs import GROUP, Pipeline, Web
from tests.kafka_groups import start_group_at_log_end

RESULTS: list[FaultResult] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print each fault's recovery time and replayed events (also for the closing note)."""
    if RESULTS:
        terminalreporter.section("failure injection: recovery and replayed events")
        for result in RESULTS:
            terminalreporter.write_line(result.line())


class Services:
    """The stack's services by name, with the ways the suite breaks and heals them."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.by_name: dict[str, Service] = {s.name: s for s in lifecycle.services(settings)}

    def __getitem__(self, name: str) -> Service:
        return self.by_name[name]

    def kill(self, name: str) -> None:
        """SIGKILL the service's process and wait until its ports are closed."""
        svc = self[name]
        pid = svc.pid()
        assert pid is not None, f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        self._wait(lambda: not procs.alive(pid) and not svc.ready(), f"{name} to die")

    def stop(self, name: str) -> None:
        self[name].stop()

    def start(self, name: str) -> None:
        """Start the service unless it runs, and wait until it is ready (and the connector)."""
        svc = self[name]
        if svc.pid() is None:
            self._wait(lambda: not any(procs.port_open(*e) for e in svc.endpoints()),
                       f"{name}'s ports to close")  # fmt: skip
            svc.start()
        svc.wait_ready(self.settings.stack.start_timeout_s)
        if name.split("-")[0] in ("connect", "kafka", "postgres"):  # any node of them
            self.wait_connector()

    def wait_connector(self, timeout: float = 120.0) -> None:
        self._wait(lambda: register.state(self.settings) == "RUNNING", "the connector", timeout)

    def ensure_all(self) -> None:
        for name in self.by_name:  # in start order; a cluster's nodes one by one
            self.start(name)

    @staticmethod
    def _wait(check: Any, what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)


@pytest.fixture(scope="session")
def services(settings: Settings) -> Iterator[Services]:
    svcs = Services(settings)
    svcs.ensure_all()
    yield svcs
    svcs.ensure_all()  # whatever happened, leave the stack running


@pytest.fixture(scope="session")
def failure_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("failure")


@pytest.fixture(scope="session")
def pipeline(services: Services, failure_dir: Path) -> Iterator[Pipeline]:
    """The suite's pipeline, under the respawn loop as the Procfile runs it.

    Its group starts at the log end: every fault run signs up fresh users and ``verify``
    looks only at them, so nothing the suite checks lies in the stack's earlier history,
    and replaying that history (64,000 events on a used stack) would only delay each run.
    """
    start_group_at_log_end(services.settings, GROUP)
    running = Pipeline(failure_dir / "pipeline.log", respawn=True).start()
    try:
        running.wait_assigned()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def web(pipeline: Pipeline, failure_dir: Path) -> Iterator[Web]:
    server = Web(failure_dir / "web.log", failure_dir / "web-metrics", pipeline.url)
    (failure_dir / "web-metrics").mkdir(exist_ok=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_pg(settings: Settings) -> Iterator[Any]:
    """A connection opened after the test's faults are healed (a restart kills old ones)."""
    import psycopg2

    conns: list[Any] = []

    def connect() -> Any:
        conn = psycopg2.connect(settings.postgres.dsn(), connect_timeout=5)
        conn.autocommit = True
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()


@pytest.fixture
def fresh_cassandra(settings: Settings) -> Iterator[Any]:
    from feedline import cassandra

    clusters: list[Any] = []

    def connect() -> Any:
        cluster, session = cassandra.connect(settings.cassandra)
        clusters.append(cluster)
        return session

    yield connect
    for cluster in clusters:
        cluster.shutdown()


@pytest.fixture
def fault_run(settings: Settings, web: Web, pipeline: Pipeline) -> FaultRun:
    return FaultRun(settings, web, [pipeline])
