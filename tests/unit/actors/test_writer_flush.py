"""CassandraWriter's flush mechanics that need no Cassandra: chunked writes, side-by-side reads.

The writes themselves are covered on the real stack (tests/integration/pipeline and the
failure suite); these pin down how a flush splits its work, with the driver calls faked.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from feedline import statements as st
from feedline.actors import cassandra_writer
from feedline.actors.cassandra_writer import APPLY_CHUNK, CassandraWriter
from feedline.settings import CassandraSettings, PipelineSettings
from feedline.strategies.base import Mutation
from feedline.strategies.common import mutation


class FakeStatements:
    def bind(self, mutation: Mutation) -> Mutation:
        return mutation


class FakeMetrics:
    """Accepts every metric call the writer makes."""

    def __getattr__(self, name: str) -> Any:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def __getitem__(self, _key: Any) -> Any:  # a labelled metric's children
        return self


def writer() -> CassandraWriter:
    w = CassandraWriter(CassandraSettings(), PipelineSettings(), None, FakeMetrics())
    w._statements = FakeStatements()
    return w


def feed_rows(n: int) -> list[Mutation]:
    return [Mutation("insert_feed_item", (u, 1, 2, 3), 10, ("feed_by_user", u)) for u in range(n)]


def test_apply_sends_at_most_a_chunk_of_statements_at_a_time(monkeypatch) -> None:
    sent: list[int] = []
    monkeypatch.setattr(
        cassandra_writer.cassandra, "execute_all", lambda _s, stmts, _c: sent.append(len(stmts))
    )
    writer()._apply(feed_rows(2 * APPLY_CHUNK + 7))
    assert sent == [APPLY_CHUNK, APPLY_CHUNK, 7]


def test_apply_of_nothing_sends_nothing(monkeypatch) -> None:
    sent: list[int] = []
    monkeypatch.setattr(
        cassandra_writer.cassandra, "execute_all", lambda _s, stmts, _c: sent.append(len(stmts))
    )
    writer()._apply([])
    assert sent == []


def test_side_by_side_keeps_order_and_overlaps_slow_calls() -> None:
    w = writer()
    w._reads = ThreadPoolExecutor(max_workers=8)
    running, peak, lock = 0, 0, threading.Lock()

    def slow_square(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return x * x

    try:
        assert w._side_by_side(slow_square, list(range(8))) == [x * x for x in range(8)]
    finally:
        w._reads.shutdown()
    assert peak > 1, "the calls ran one after another"


def test_side_by_side_raises_what_a_call_raised() -> None:
    w = writer()
    w._reads = ThreadPoolExecutor(max_workers=2)

    def boom(x: int) -> int:
        if x == 3:
            raise ValueError("bad event")
        return x

    try:
        with pytest.raises(ValueError, match="bad event"):
            w._side_by_side(boom, [1, 2, 3, 4])
    finally:
        w._reads.shutdown()


def test_apply_writes_a_hot_rows_newest_write_only(monkeypatch) -> None:
    """Ten likes' count updates of one shard in a flush: only the newest is sent."""
    sent: list[Any] = []
    monkeypatch.setattr(
        cassandra_writer.cassandra, "execute_all", lambda _s, stmts, _c: sent.extend(stmts)
    )
    counts = [mutation(st.UPDATE_SHARD, (7, "x", n, 0), 100 + n) for n in range(10)]
    other = mutation(st.UPDATE_SHARD, (8, "y", 1, 0), 50)
    writer()._apply([*counts, other])
    assert sorted(sent, key=lambda m: m.params[0]) == [counts[-1], other]


@pytest.mark.parametrize(
    ("linger", "batch", "queued", "waits"),
    [
        (0.0, 1, False, False),  # off (the default): flush at once
        (0.01, 1, False, True),  # a small batch, nothing queued: wait for more
        (0.01, 1, True, False),  # something queued already: it joins the flush anyway
        (0.01, 200, False, False),  # a full batch: flush now
    ],
)
def test_a_small_batch_waits_the_linger_for_more_only_when_nothing_is_queued(
    monkeypatch: pytest.MonkeyPatch, linger: float, batch: int, queued: bool, waits: bool
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(cassandra_writer.time, "sleep", slept.append)
    w = CassandraWriter(
        CassandraSettings(), PipelineSettings(write_linger_s=linger), None, FakeMetrics()
    )
    w.actor_inbox = queue.Queue()
    if queued:
        w.actor_inbox.put("a WriteBatch")
    w._batch = [object()] * batch
    w._linger()
    assert slept == ([linger] if waits else [])
