"""CassandraWriter under failures that the real Cassandra cannot produce on cue.

Why fakes: a ``prepare()`` that times out once, a read that fails with ReadFailure three
times and then passes, or one event's expansion that keeps timing out while every other
event writes fine cannot be made to happen on demand against the real node (the failure
suite can only stop or kill it, which fails everything at once). So the driver session,
the writes (``cassandra.execute_all``) and the fan-out Expander are fakes here; the writer
itself runs as a real pykka actor with real metrics, and sends to recording routers.
What the real stack adds is covered by tests/integration/pipeline and tests/failure.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pykka
import pytest
from cassandra import (
    CoordinationFailure,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    WriteFailure,
)
from cassandra.cluster import NoHostAvailable
from cassandra.protocol import ServerError

from feedline import statements as st
from feedline.actors import cassandra_writer
from feedline.actors.cassandra_writer import CassandraWriter
from feedline.actors.messages import InjectFailure, InvalidateBatch, Record, Work, WriteBatch
from feedline.pipeline.health_server import actors_report
from feedline.pipeline.metrics import PipelineMetrics
from feedline.settings import CassandraSettings, PipelineSettings
from feedline.strategies.base import Mutation, Plan, Unbackfill
from feedline.supervisors import (
    ChildSpec,
    Intensity,
    Strategy,
    Supervisor,
    WhichChild,
    find_node,
)

TOPIC = "feedline.public.followers"
CREATED = datetime(2026, 11, 26, tzinfo=UTC)
# Small budgets so that a test sees minutes of production behaviour in a fraction of a second.
FAST = PipelineSettings(retry_backoff_max_s=0.05, retry_budget_s=0.4, parked_retry_s=0.3)


# -- fakes ------------------------------------------------------------------------------


@dataclass
class Script:
    """What the fake Cassandra does next; shared by every session the writer opens."""

    prepare_timeouts: int = 0  # the next N prepare() calls raise OperationTimedOut
    cluster_down: bool = False  # every call fails with NoHostAvailable (the probe too)
    # expansion follower_id -> errors to raise, in order; an entry of None means "pass"
    expand_errors: dict[int, list[BaseException | None]] = field(default_factory=dict)
    expand_forever: dict[int, BaseException] = field(default_factory=dict)
    write_errors: dict[int, list[BaseException]] = field(default_factory=dict)  # by user_id
    written: list[tuple[Any, ...]] = field(default_factory=list)  # (statement cql, values)
    expand_calls: list[tuple[int, float]] = field(default_factory=list)
    clusters: list[FakeCluster] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def down(self) -> NoHostAvailable:
        return NoHostAvailable("no host", {"127.0.0.1": ConnectionRefusedError()})


class FakeCluster:
    fail_shutdown = False  # set by a test: the driver's shutdown raising on cue

    def __init__(self) -> None:
        self.shut_down = False

    def shutdown(self) -> None:
        self.shut_down = True
        if self.fail_shutdown:
            raise RuntimeError("shutdown failed")


class FakePrepared:
    def __init__(self, cql: str):
        self.cql = cql

    def bind(self, values: Any) -> tuple[str, tuple[Any, ...]]:
        return (self.cql, tuple(values))


class FakeSession:
    def __init__(self, script: Script):
        self.script = script

    def prepare(self, cql: str) -> FakePrepared:
        with self.script.lock:
            if self.script.prepare_timeouts:
                self.script.prepare_timeouts -= 1
                raise OperationTimedOut("prepare timed out")
        return FakePrepared(cql)

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if self.script.cluster_down:
            raise self.script.down()
        return []


@dataclass
class FakeExpanded:
    mutations: list[Mutation]
    keys: set[str]
    recheck: Callable[[], list[Mutation]] = lambda: []
    more: Callable[[], Any] | None = None  # one step: every expansion here is small


class FakeExpander:
    """Expand an Unbackfill into one feed delete, failing as the script says."""

    def __init__(self, script: Script):
        self.script = script

    def expand(self, e: Unbackfill) -> FakeExpanded:
        with self.script.lock:
            self.script.expand_calls.append((e.follower_id, time.monotonic()))
            if self.script.cluster_down:
                raise self.script.down()
            if e.follower_id in self.script.expand_forever:
                raise self.script.expand_forever[e.follower_id]
            errors = self.script.expand_errors.get(e.follower_id)
            error = errors.pop(0) if errors else None
        if error is not None:
            raise error
        return FakeExpanded([feed_delete(e.follower_id)], {f"feed:{e.follower_id}"})


class Recorder:
    """A Router that records what it is told (tell(key, message))."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.lock = threading.Lock()

    def tell(self, _key: Any, message: Any) -> bool:
        with self.lock:
            self.messages.append(message)
        return True

    def batches(self) -> list[InvalidateBatch]:
        with self.lock:
            return [m for m in self.messages if isinstance(m, InvalidateBatch)]

    def acked(self) -> set[int]:
        return {w.record.offset for b in self.batches() for w in b.items}

    def cache_keys(self) -> set[str]:
        return {k for b in self.batches() for k in b.keys}


class Owner:
    """Stands in for the PartitionConsumer ref an event is acknowledged to."""

    def tell(self, _message: Any) -> None:
        pass

    def is_alive(self) -> bool:
        return True


# -- events -----------------------------------------------------------------------------


def feed_delete(user_id: int) -> Mutation:
    return Mutation(st.DELETE_FEED_ITEM, (user_id, CREATED, 7), 5, ("feed_by_user", user_id))


def edge_delete(follower: int, followee: int) -> Mutation:
    return Mutation(st.DELETE_FOLLOWER, (followee, follower), 5, ("followers_by_user", followee))


def unfollow(offset: int, follower: int, partition: int = 3) -> Work:
    """An unfollow of user 100 + follower (distinct followees keep every write its own
    statement): its own edge delete, an Unbackfill, and its cache keys."""
    followee = 100 + follower
    plan = Plan(
        mutations=(edge_delete(follower, followee),),
        expansions=(Unbackfill(follower, followee, 5),),
        invalidations=(f"followers:{followee}", f"following:{follower}"),
    )
    return Work(Record(TOPIC, partition, offset, b"k", b"v"), plan, OWNER)


OWNER = Owner()


# -- fixtures ---------------------------------------------------------------------------


@dataclass
class Rig:
    script: Script
    invalidators: Recorder
    metrics: PipelineMetrics
    start: Callable[..., Any]


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    script = Script()

    def connect(_settings: Any, *args: Any, **kwargs: Any) -> tuple[FakeCluster, FakeSession]:
        if script.cluster_down:
            raise script.down()
        cluster = FakeCluster()
        script.clusters.append(cluster)
        return cluster, FakeSession(script)

    def execute_all(_session: Any, statements: list[Any], _concurrency: int) -> None:
        if script.cluster_down:
            raise script.down()
        for cql, values in statements:
            with script.lock:
                errors = script.write_errors.get(values[0]) if values else None
                error = errors.pop(0) if errors else None
            if error is not None:
                raise error
            with script.lock:
                script.written.append((cql, values))

    monkeypatch.setattr(cassandra_writer.cassandra, "connect", connect)
    monkeypatch.setattr(cassandra_writer.cassandra, "execute_all", execute_all)
    monkeypatch.setattr(cassandra_writer.cassandra, "replica_key", lambda _session: None)
    monkeypatch.setattr(cassandra_writer, "Expander", lambda *_a, **_k: FakeExpander(script))
    invalidators, metrics = Recorder(), PipelineMetrics()

    def start(pipeline: PipelineSettings = FAST) -> Any:
        return CassandraWriter.start(
            CassandraSettings(),
            pipeline,
            invalidators=invalidators,
            metrics=metrics,
        )

    yield Rig(script, invalidators, metrics, start)
    pykka.ActorRegistry.stop_all(block=True, timeout=5)


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def supervised_writer(rig: Rig) -> Any:
    """Start writer-0 under a real ONE_FOR_ONE supervisor (restarts on a crash)."""
    return Supervisor.start(
        name="root",
        children=[
            ChildSpec(
                id="writer-0",
                actor=CassandraWriter,
                kwargs={
                    "cassandra_settings": CassandraSettings(),
                    "pipeline": FAST,
                    "invalidators": rig.invalidators,
                    "metrics": rig.metrics,
                },
            )
        ],
        strategy=Strategy.ONE_FOR_ONE,
        intensity=Intensity(max_restarts=100, period=60.0),
        on_escalate=lambda _error: None,
    )


def metric(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def assert_nothing_dead_lettered(rig: Rig) -> None:
    """The writer has no way to the DLQ any more (it used to dead-letter these events):
    only an event that cannot be decoded or planned is poison, and the Adapter says so."""
    assert "dead_letters" not in inspect.signature(CassandraWriter).parameters
    assert metric(rig.metrics, "feedline_dlq_total") == 0


# -- defect 1: a half-connected writer -----------------------------------------------------


def test_a_prepare_timeout_while_connecting_dead_letters_nothing_and_the_events_go_through_later(
    rig: Rig,
) -> None:
    """issue 15, defect 1: prepare() timed out after the session existed; every later flush
    then failed an assertion and each event went to the DLQ with its offset committed.
    The session is a fake because a real node cannot be made to time out one prepare() on
    cue (stopping it fails the connect itself, which the old code handled)."""
    rig.script.prepare_timeouts = 1
    writer = rig.start()
    events = [unfollow(10, follower=2), unfollow(11, follower=3)]
    writer.tell(WriteBatch(tuple(events)))

    eventually(lambda: _assert(rig.invalidators.acked() == {10, 11}, rig.invalidators.acked()))
    assert_nothing_dead_lettered(rig)
    written = {values for _cql, values in rig.script.written}
    assert {(5, 102, 2), (5, 103, 3)} <= written, written  # the edge deletes (ts first)
    assert rig.script.clusters[0].shut_down, "the half-built connection was not closed"


# -- defect 2: cluster conditions are retried with backoff, never dead-lettered -----------


@pytest.mark.parametrize(
    "error",
    [
        ReadFailure("tombstone overwhelm"),
        CoordinationFailure("replica failed"),
        ServerError(0, "java.lang.RuntimeException", {}),
        ReadTimeout("read_request_timeout"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_failing_expansion_is_retried_with_backoff_and_its_written_keys_are_invalidated(
    rig: Rig, error: BaseException
) -> None:
    """issue 15, defect 2: an unfollow whose unbackfill read failed was retried five times
    without a pause, dead-lettered, acknowledged, and its cache keys were never deleted."""
    rig.script.expand_errors[2] = [error, error, error]
    writer = rig.start(dataclasses.replace(FAST, retry_budget_s=30.0))
    writer.tell(WriteBatch((unfollow(20, follower=2),)))

    eventually(lambda: _assert(rig.invalidators.acked() == {20}, rig.invalidators.acked()))
    assert_nothing_dead_lettered(rig)
    first_ack = next(i for i, b in enumerate(rig.invalidators.batches()) if b.items)
    before_ack = {k for b in rig.invalidators.batches()[:first_ack] for k in b.keys}
    assert {"followers:102", "following:2"} <= before_ack, "own writes landed but stayed cached"
    calls = [t for f, t in rig.script.expand_calls if f == 2]
    assert len(calls) == 4
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= 0.01, f"retried without backoff: {gaps}"


def test_a_failing_expanded_write_is_retried_not_dead_lettered(rig: Rig) -> None:
    """issue 15, defect 2 (the write side): WriteFailure is a cluster condition."""
    rig.script.write_errors[2] = [WriteFailure("replica failed the write")] * 2
    writer = rig.start(dataclasses.replace(FAST, retry_budget_s=30.0))
    writer.tell(WriteBatch((unfollow(21, follower=2),)))

    eventually(lambda: _assert(rig.invalidators.acked() == {21}, rig.invalidators.acked()))
    assert_nothing_dead_lettered(rig)
    assert "feed:2" in rig.invalidators.cache_keys()


# -- defect 5's escape: parked, visible, retried slowly -----------------------------------


def test_an_event_that_keeps_failing_is_parked_visibly_and_goes_through_once_it_can(
    rig: Rig,
) -> None:
    """issue 15, defect 5: an expansion that times out every time made the writer crash
    every 20 s and re-send forever, invisibly. Now the event is parked: unacknowledged,
    retried slowly, counted, shown in /health/actors; the other events go on."""
    rig.script.expand_forever[2] = ReadTimeout("read_request_timeout")
    root = supervised_writer(rig)
    writer = root.ask(WhichChild("writer-0"))
    writer.tell(WriteBatch((unfollow(41, follower=3), unfollow(42, follower=2))))

    eventually(lambda: _assert(41 in rig.invalidators.acked(), "the healthy event waited"))

    def parked() -> dict[str, Any]:
        report = actors_report(root, rig.metrics)
        assert report["status"] == "degraded", report["problems"]
        assert any(f"{TOPIC}[3]@42" in p for p in report["problems"]), report["problems"]
        return report

    report = eventually(parked)
    node = find_node(report["tree"], "writer-0")
    assert node is not None and node["stats"]["parked"], node
    assert metric(rig.metrics, "feedline_parked_events", actor="writer-0") == 1
    assert metric(rig.metrics, "feedline_events_parked_total") == 1
    assert 42 not in rig.invalidators.acked()
    assert_nothing_dead_lettered(rig)
    assert "following:2" in rig.invalidators.cache_keys(), "its own writes landed: keys must go"

    attempts = len([1 for f, _ in rig.script.expand_calls if f == 2])
    time.sleep(FAST.parked_retry_s * 2.5)
    later = len([1 for f, _ in rig.script.expand_calls if f == 2])
    assert 1 <= later - attempts <= 4, (attempts, later)  # slowly, not in a tight loop

    del rig.script.expand_forever[2]  # e.g. the feed got compacted, the read passes again
    eventually(lambda: _assert(42 in rig.invalidators.acked(), "never went through"))
    eventually(lambda: _assert(actors_report(root, rig.metrics)["status"] == "ok", "degraded"))
    assert metric(rig.metrics, "feedline_parked_events", actor="writer-0") == 0


def test_a_cluster_outage_is_not_blamed_on_the_events(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cassandra down fails every event transiently: nothing is parked or dead-lettered,
    nothing is acknowledged, and everything goes through once the cluster is back."""
    monkeypatch.setattr(cassandra_writer, "RESTART_AFTER_S", 60.0)
    writer = rig.start(dataclasses.replace(FAST, retry_budget_s=0.1))
    rig.script.cluster_down = True
    writer.tell(WriteBatch((unfollow(50, follower=2), unfollow(51, follower=3))))
    time.sleep(0.6)
    assert rig.invalidators.acked() == set()
    assert metric(rig.metrics, "feedline_events_parked_total") == 0
    assert metric(rig.metrics, "feedline_dependency_up", dependency="cassandra") == 0
    rig.script.cluster_down = False
    eventually(lambda: _assert(rig.invalidators.acked() == {50, 51}, rig.invalidators.acked()))
    assert_nothing_dead_lettered(rig)


def _assert(condition: bool, message: Any) -> None:
    assert condition, message


def test_a_crash_is_reported_even_when_closing_the_cluster_fails(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review of issue 15, defect 7's pattern: the writer closed its cluster before
    reporting; pykka swallows an error in on_failure, so a failing shutdown hid the
    writer's death and the supervisor never restarted it."""
    monkeypatch.setattr(FakeCluster, "fail_shutdown", True)
    root = supervised_writer(rig)
    first = root.ask(WhichChild("writer-0"))
    first.tell(WriteBatch((unfollow(51, follower=4),)))  # connects (a cluster to close)
    eventually(lambda: _assert(51 in rig.invalidators.acked(), "not written"))
    first.tell(InjectFailure("boom"))

    def restarted() -> None:
        now = root.ask(WhichChild("writer-0"))
        _assert(now is not None and now != first and now.is_alive(), "not restarted")

    eventually(restarted)
