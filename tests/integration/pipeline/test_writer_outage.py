"""CassandraWriter on the real Cassandra, reached through a TCP proxy the test can cut.

Stopping the shared Cassandra would break every other suite on the stack (the failure suite
does that, alone, at the end); cutting this writer's own connections gives it the real
driver's errors (connections reset and refused, hosts marked down) and nobody else. What it
pins down: an outage is waited out in place, never blamed on the events (nothing parked,
nothing acknowledged meanwhile), and everything goes through once the cluster is back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from feedline import statements as st
from feedline.actors.cassandra_writer import CassandraWriter
from feedline.actors.messages import InvalidateBatch, Record, Work, WriteBatch
from feedline.pipeline.metrics import PipelineMetrics
from feedline.settings import PipelineSettings
from feedline.strategies.base import Mutation, Plan
from tests.integration.pipeline.conftest import eventually

pytestmark = pytest.mark.integration


class Proxy:
    """Forward loopback TCP connections to Cassandra until cut; refuse them while cut."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            self.up = False
            for s in self.sockets:
                _close(s)
            self.sockets.clear()

    def heal(self) -> None:
        with self.lock:
            self.up = True

    def close(self) -> None:
        self.cut()
        _close(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if not self.up:
                    _close(client)
                    continue
                server = socket.create_connection(self.target)
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()


class Invalidators:
    """Records what the writer hands on; the offsets in it are the acknowledged ones."""

    def __init__(self) -> None:
        self.acked: set[int] = set()

    def tell(self, _key: Any, message: InvalidateBatch) -> bool:
        self.acked |= {w.record.offset for w in message.items}
        return True


class Owner:
    def tell(self, _message: Any) -> None:
        pass

    def is_alive(self) -> bool:
        return True


def upsert_user(offset: int, user_id: int, handle: str) -> Work:
    params = (user_id, handle, 0, 0, 0, datetime.now(UTC))
    mutation = Mutation(st.UPSERT_USER, params, 1, st.get(st.UPSERT_USER).partition(params))
    plan = Plan(mutations=(mutation,), invalidations=(f"user:{user_id}",))
    return Work(Record("feedline.public.users", 0, offset, None, None), plan, Owner())


@pytest.fixture
def proxy(settings: Any) -> Iterator[Proxy]:
    running = Proxy((settings.cassandra.hosts[0], settings.cassandra.port))
    yield running
    running.close()


def test_an_outage_is_waited_out_not_blamed_on_the_events(
    settings: Any, proxy: Proxy, cassandra_session: Any
) -> None:
    metrics, invalidators = PipelineMetrics(), Invalidators()
    writer = CassandraWriter.start(
        dataclasses.replace(settings.cassandra, hosts=("127.0.0.1",), port=proxy.port),
        PipelineSettings(retry_backoff_max_s=0.1, retry_budget_s=0.5, parked_retry_s=0.5),
        invalidators=invalidators,
        metrics=metrics,
    )
    base = 9_100_000_000_000 + uuid.uuid4().int % 1_000_000_000
    try:
        writer.tell(WriteBatch((upsert_user(1, base, "before"),)))
        eventually(lambda: _assert(invalidators.acked == {1}, invalidators.acked))

        proxy.cut()
        writer.tell(WriteBatch((upsert_user(2, base + 1, "during"),)))
        time.sleep(3.0)  # well past the retry budget, well short of the 20 s restart
        assert invalidators.acked == {1}, "acknowledged while Cassandra was unreachable"
        up = metrics.registry.get_sample_value(
            "feedline_dependency_up", {"dependency": "cassandra"}
        )
        assert up == 0

        proxy.heal()
        eventually(lambda: _assert(invalidators.acked == {1, 2}, invalidators.acked), 30)
        row = cassandra_session.execute(
            "SELECT handle FROM users_by_id WHERE user_id = %s", (base + 1,)
        ).one()
        assert row is not None and row.handle == "during"
        assert (metrics.registry.get_sample_value("feedline_events_parked_total") or 0) == 0
        assert writer.is_alive()
    finally:
        writer.stop(block=True, timeout=30)
        cassandra_session.execute(
            "DELETE FROM users_by_id WHERE user_id IN (%s, %s)", (base, base + 1)
        )


def _assert(condition: bool, message: Any) -> None:
    assert condition, message
