"""CassandraWriter runs a big fan-out in steps between other events (issue 16, deliverable 3).

Why a fake session: the point is *when* each event is acknowledged relative to how far a
big fan-out has got, and that needs a fan-out whose every step takes a known time. Here a
read of followers costs a fixed time per row returned, and every write a fixed time per
statement, so a 60-follower fan-out takes seconds in one step and a tenth of a second per
step of five. The writer is a real pykka actor, and it runs the real Expander and the real
fan-out programs (feedline/fanout.py) with the real statements; only the driver calls
(reads, ``execute_all``, ``execute_concurrent``) are fakes. The same schedule on the real
stack is tests/integration/pipeline/test_big_fan_out.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pykka
import pytest

from feedline import fanout
from feedline import statements as st
from feedline.actors import cassandra_writer
from feedline.actors.cassandra_writer import CassandraWriter
from feedline.actors.messages import InvalidateBatch, Record, Work, WriteBatch
from feedline.pipeline.metrics import PipelineMetrics
from feedline.settings import CassandraSettings, PipelineSettings
from feedline.strategies.base import FanOutShard, Plan

CREATED = datetime(2026, 11, 30, tzinfo=UTC)
BIG, SMALL = 1, 2  # authors: 60 followers, and 1
FOLLOWERS = {BIG: list(range(100, 160)), SMALL: [900]}
READ_S_PER_ROW = 0.02  # 60 followers: 1.2 s for one read of them all
WRITE_S = 0.001  # per write


class Log:
    """What happened, in order: ('read', author, n), ('write', user_id), ('ack', offset)."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, tuple[Any, ...]]] = []
        self.lock = threading.Lock()
        self.big_started = threading.Event()

    def add(self, *entry: Any) -> None:
        with self.lock:
            self.entries.append((time.monotonic(), entry))

    def when(self, match: Callable[[tuple[Any, ...]], bool]) -> float | None:
        with self.lock:
            return next((t for t, e in self.entries if match(e)), None)

    def acked_at(self, offset: int) -> float | None:
        return self.when(lambda e: e == ("ack", offset))


class FakePrepared:
    def __init__(self, cql: str):
        self.name = next(n for n, s in st.STATEMENTS.items() if s.cql == cql)

    def bind(self, values: Any) -> tuple[str, tuple[Any, ...]]:
        return (self.name, tuple(values))


class FakeSession:
    """Answer the fan-out's reads from FOLLOWERS, taking READ_S_PER_ROW per row."""

    def __init__(self, log: Log):
        self.log = log

    def prepare(self, cql: str) -> FakePrepared:
        return FakePrepared(cql)

    def execute(self, query: tuple[str, tuple[Any, ...]], *args: Any, **kw: Any) -> list[Any]:
        name, values = query
        if name == st.SELECT_AUTHOR_SHARD:
            return [SimpleNamespace(shard_id=values[2])]
        if name in (st.SELECT_FEED_TRIM, st.SELECT_FEED_INDEX_ALL):
            return []  # a feed trim's reads (fanout.FeedTrims): every feed is within its cap
        if name == st.SELECT_AUTHOR_MODE:
            return []  # pull is on by default: no decision row, so every author is push
        if name == st.SELECT_FOLLOWERS_PAGE:
            author, after, limit = values
            ids = [f for f in FOLLOWERS[author] if f > after][:limit]
        elif name == st.SELECT_FOLLOWERS_BETWEEN:
            author, first, last = values
            ids = [f for f in FOLLOWERS[author] if first <= f <= last]
        else:
            raise AssertionError(f"unexpected read {name}")
        if author == BIG:
            self.log.big_started.set()
        time.sleep(READ_S_PER_ROW * len(ids))
        self.log.add("read", author, len(ids))
        return [SimpleNamespace(follower_id=f, created_at=None, edge_lsn=5) for f in ids]


class Recorder:
    """The invalidators' router: logs each acknowledged offset."""

    def __init__(self, log: Log):
        self.log = log

    def tell(self, _key: Any, message: Any) -> bool:
        assert isinstance(message, InvalidateBatch)
        for w in message.items:
            self.log.add("ack", w.record.offset)
        return True


class Owner:
    def tell(self, _message: Any) -> None:
        pass

    def is_alive(self) -> bool:
        return True


def post(offset: int, author: int) -> Work:
    plan = Plan(expansions=(FanOutShard(author, 1000 + offset, CREATED, 50),))
    record = Record("feedline.public.shards", 0, offset, b"k", b"v")
    return Work(record, plan, Owner())


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Iterator[Log]:
    log = Log()

    def connect(_settings: Any, *args: Any, **kwargs: Any) -> tuple[Any, FakeSession]:
        return SimpleNamespace(shutdown=lambda: None), FakeSession(log)

    def execute_all(_session: Any, statements: list[Any], _concurrency: int) -> None:
        for name, values in statements:
            time.sleep(WRITE_S)
            log.add("write", name, values)

    def execute_concurrent(session: Any, statements: Any, **_kw: Any) -> list[Any]:
        return [SimpleNamespace(result_or_exc=session.execute(s)) for s, _ in statements]

    monkeypatch.setattr(cassandra_writer.cassandra, "connect", connect)
    monkeypatch.setattr(cassandra_writer.cassandra, "execute_all", execute_all)
    monkeypatch.setattr(  # one write per mutation: which batch holds it is moot here
        cassandra_writer.cassandra, "group_statements", lambda ms, bind, _r: [bind(m) for m in ms]
    )
    monkeypatch.setattr(cassandra_writer.cassandra, "replica_key", lambda _session: None)
    monkeypatch.setattr(fanout, "execute_concurrent", execute_concurrent)
    yield log
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


def run_big_then_small(
    log: Log, chunk: int, while_running: Callable[[Any], None] = lambda _writer: None
) -> tuple[float, float | None, float | None]:
    """Send a big fan-out, then (once its first read runs) an ordinary post; return when
    the ordinary post was sent and when each was acknowledged (None: not within 5 s).
    ``while_running(writer)`` runs once the ordinary post is acknowledged."""
    pipeline = PipelineSettings(expansion_chunk=chunk)
    writer = CassandraWriter.start(
        CassandraSettings(), pipeline, invalidators=Recorder(log), metrics=PipelineMetrics()
    )
    writer.tell(WriteBatch((post(10, BIG),)))
    assert log.big_started.wait(5)
    sent = time.monotonic()
    writer.tell(WriteBatch((post(11, SMALL),)))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and log.acked_at(11) is None:
        time.sleep(0.01)
    while_running(writer)
    while time.monotonic() < deadline and log.acked_at(10) is None:
        time.sleep(0.01)
    return sent, log.acked_at(10), log.acked_at(11)


def test_an_ordinary_post_is_acknowledged_while_a_big_fan_out_is_still_in_steps(log: Log) -> None:
    shown: list[str] = []
    _sent, big_acked, small_acked = run_big_then_small(
        log, 5, lambda writer: shown.extend(writer.proxy().health().get(timeout=5)["expanding"])
    )
    assert small_acked is not None and big_acked is not None
    # The ordinary post waited for a step of the big one (5 rows), not for all of it: it is
    # acknowledged first and the big one still reads afterwards (no wall-clock bound: a
    # shared 2-core box stalls; the order is what a one-step fan-out cannot produce).
    assert small_acked < big_acked
    big_reads = [e for t, e in log.entries if e[:2] == ("read", BIG) and t > small_acked]
    assert big_reads, "the big fan-out was already over when the ordinary post was done"
    assert [e.split(" for ")[0] for e in shown] == ["feedline.public.shards[0]@10"], shown


def test_a_big_fan_out_is_acknowledged_only_after_its_last_step(log: Log) -> None:
    _, big_acked, _ = run_big_then_small(log, chunk=5)
    assert big_acked is not None
    pages = [e[2] for t, e in log.entries if e[:2] == ("read", BIG) and t <= big_acked]
    # 12 full pages read and rechecked (24 reads of 5), then the empty page that ends it
    assert sum(pages) == 2 * len(FOLLOWERS[BIG]) and pages[-1] == 0
    writes_after = [e for t, e in log.entries if e[0] == "write" and t > big_acked]
    assert writes_after == [], "a step was written after the event was acknowledged"


def test_a_failed_step_makes_the_big_event_start_over_and_it_is_acknowledged_once_through(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that fails (here a bug-like error on the third page) leaves the event
    unacknowledged; it is retried from its first page, and acknowledged only after a run
    whose every step went through."""
    failures = [RuntimeError("third page failed")]
    execute = FakeSession.execute

    def failing(self: FakeSession, query: Any, *args: Any, **kw: Any) -> list[Any]:
        name, values = query
        third_page = name == st.SELECT_FOLLOWERS_PAGE and values[:2] == (BIG, 109)
        if third_page and failures:
            raise failures.pop()
        return execute(self, query, *args, **kw)

    monkeypatch.setattr(FakeSession, "execute", failing)
    pipeline = PipelineSettings(expansion_chunk=5, retry_backoff_max_s=0.05)
    writer = CassandraWriter.start(
        CassandraSettings(), pipeline, invalidators=Recorder(log), metrics=PipelineMetrics()
    )
    writer.tell(WriteBatch((post(10, BIG),)))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and log.acked_at(10) is None:
        time.sleep(0.01)
    acked = log.acked_at(10)
    assert acked is not None and not failures
    firsts = [t for t, e in log.entries if e == ("read", BIG, 5) and t < acked]
    pages = [e[2] for t, e in log.entries if e[:2] == ("read", BIG) and t <= acked]
    # page 1 and its recheck, page 2 and its recheck: then the failure; then all of it again
    assert len(firsts) >= 2 * 2 + 2 * len(FOLLOWERS[BIG]) // 5
    assert pages[-1] == 0 and [t for t, e in log.entries if e == ("ack", 10)] == [acked]
