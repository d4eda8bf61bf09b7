"""Connect to Cassandra and apply mutations the way the read model needs.

Mutations of one partition go together in an UNLOGGED batch (one round trip, applied
atomically on that partition's replicas). Small partitions owned by the same replicas
share a batch too, a few at a time (``group_statements``), and the batches run
concurrently with a bounded window. A LOGGED batch would pay the batchlog for nothing:
every mutation is idempotent and timestamped, so a retry simply converges.

Why batches of several partitions, when the usual advice is one partition per UNLOGGED
batch: the advice is against batches whose partitions live on different nodes (the
coordinator then forwards each mutation, and holds the whole batch, a hop the driver's
token-aware routing would have saved). A batch whose partitions all have the same
replicas has no such hop: token-aware routing sends it to one of those replicas, which
applies its share and sends the rest to the same nodes it would have for single
statements (this is the Spark Cassandra Connector's ``replica_set`` grouping). What it
saves is the per-request cost, which at Feedline's rates is most of the cost: packing took
the mixed load from 2.56 to 0.40 statements per event with the same rows, and Cassandra's
CPU per 1,000 writes from 5.10 to 3.88 s, the pipeline's from 4.31 to 3.24 s (bench cpu,
3 alternating runs each; issue 17).
Across partitions a batch is not atomic, and nothing relies on it: the writer treats a
failed batch as every one of its events failed, and retries rewrite the same cells.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from cassandra import (
    CDCWriteFailure,
    ConsistencyLevel,
    CoordinationFailure,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra import __version__ as cassandra_version
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.concurrent import execute_concurrent
from cassandra.connection import ConnectionException
from cassandra.policies import (
    ConstantSpeculativeExecutionPolicy,
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage, ServerError
from cassandra.query import BatchStatement, BatchType, Statement, named_tuple_factory

from feedline.errors import DependencyUnavailable
from feedline.settings import CassandraSettings
from feedline.strategies.base import Mutation

logger = logging.getLogger(__name__)

# Cluster conditions: Cassandra is down, busy, or a replica failed the request (a read
# over too many tombstones, a write a replica could not apply, an internal error). None of
# them says the statement is wrong, and the same statement may pass later: retried, never
# a reason to dead-letter an event. (CoordinationFailure covers ReadFailure, WriteFailure.)
TRANSIENT = (
    NoHostAvailable,
    OperationTimedOut,
    Unavailable,
    WriteTimeout,
    ReadTimeout,
    CoordinationFailure,
    CDCWriteFailure,
    ServerError,
    ConnectionException,
    OverloadedErrorMessage,
    IsBootstrappingErrorMessage,
)
PROBE = "SELECT release_version FROM system.local"  # answered by the coordinator alone

SPECULATIONS = 2  # extra attempts of a slow read, each after speculative_delay_s
PATCHED_DRIVER = "3.30.1"  # the driver whose idle loop stop_idle_reactor_timer fixes
MAX_BATCH = 30  # statements per UNLOGGED batch: stays under Cassandra's batch size warnings
# Several partitions in one batch: Cassandra logs a warning per batch above 10 partitions
# (unlogged_batch_across_partitions_warn_threshold) and above 5 KiB of data
# (batch_size_warn_threshold; it rejects batches above 50 KiB): stay under both defaults.
BATCH_PARTITIONS = 10
BATCH_BYTES = 4096  # bound values (serialized) per batch of several partitions
ROW_TYPES_MAX = 512  # distinct column lists remembered by named_rows (queries are fixed)


# v4, not v5: the driver frames and checksums v5 segments in Python, ~90 µs of CPU per query
# here (a fifth of a read-model query's client cost) for nothing that Feedline uses; TCP
# already checksums the bytes.
PROTOCOL_VERSION = 4


def named_rows(colnames: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Any]:
    """Return the driver's named-tuple rows, making each column list's class only once.

    Why: the driver's ``named_tuple_factory`` builds a new namedtuple class for every
    result, ~40 µs of CPU each, a visible share of a read-model cache miss. The class
    is the driver's own (made on first sight of a column list), so rows are identical.
    An empty result needs no class at all: the driver's factory would still make one
    (most of the pipeline's re-validation reads find nothing to undo).
    """
    if not rows:
        return []
    key = tuple(colnames)
    row_type = _ROW_TYPES.get(key)
    if row_type is None:
        made = named_tuple_factory(colnames, rows)
        if made:
            if len(_ROW_TYPES) >= ROW_TYPES_MAX:
                _ROW_TYPES.clear()
            _ROW_TYPES[key] = type(made[0])
        return made
    return [row_type(*row) for row in rows]


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def stop_idle_reactor_timer() -> bool:
    """Make the driver's libev event loop stop its timer when no request timer is left.

    cassandra-driver 3.30.1's ``LibevLoop._update_timer`` re-arms one libev timer before
    every loop iteration for the earliest pending request timer, and means to stop it when
    none is left; but its ``else`` belongs to ``if not self._shutdown``, so it never stops.
    The libev wrapper's ``Timer.start`` makes a *repeating* timer, so it keeps firing at the
    interval it was last given. After a request timer *fires* (a speculative execution, a
    timeout) as the last one pending, that interval was the microseconds left before it:
    the loop thread then wakes ~7,000 times a second until the next request, taking the
    GIL each time (measured: a process idle after a burst of 20,000 reads with speculation
    on used 35-38% of a core; the stream process with 10,000 idle streams 37% on the
    cluster, 40% on one node). Idempotent. Returns False when it patched nothing: the libev
    extension is missing (the driver then uses another reactor, without this bug), or the
    driver is not the version this copy was written for (it logs a warning: check whether
    the bug is still there; tests/integration/test_cassandra_driver.py shows it).
    """
    try:
        from cassandra.io.libevreactor import LibevLoop
    except ImportError:
        return False
    if cassandra_version != PATCHED_DRIVER:
        logger.warning("cassandra-driver %s: idle event loop fix not applied", cassandra_version)
        return False
    if getattr(LibevLoop._update_timer, "feedline_fixed", False):
        return True

    def _update_timer(self: Any) -> None:
        next_end = None if self._shutdown else self._timers.service_timeouts()
        if next_end:
            self._loop_timer.start(next_end - time.time())
        else:
            self._loop_timer.stop()

    _update_timer.feedline_fixed = True  # type: ignore[attr-defined]
    LibevLoop._update_timer = _update_timer
    return True


def connect(
    settings: CassandraSettings, request_timeout: float = 10.0, use_keyspace: bool = True
) -> tuple[Cluster, Session]:
    """Open a session with token-aware routing at the settings' consistency level.

    The session is on the settings' keyspace unless ``use_keyspace`` is False (migrations,
    which may have to create it). A failed connect shuts its cluster's threads down.
    """
    stop_idle_reactor_timer()
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(settings.local_dc or None)),
        consistency_level=ConsistencyLevel.name_to_value[settings.consistency],
        # Applies to statements marked idempotent only: the reads (prepare_read).
        speculative_execution_policy=(
            ConstantSpeculativeExecutionPolicy(settings.speculative_delay_s, SPECULATIONS)
            if settings.speculative_delay_s > 0
            else None
        ),
        request_timeout=request_timeout,
        row_factory=named_rows,
    )
    cluster = Cluster(
        contact_points=list(settings.hosts),
        port=settings.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=PROTOCOL_VERSION,
        connect_timeout=5,
        # The default waits up to 10 minutes between attempts: far too long to notice
        # that a restarted node is back.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=5.0),
    )
    try:
        session = cluster.connect(settings.keyspace if use_keyspace else None)
    except Exception:
        cluster.shutdown()
        raise
    return cluster, session


def prepare_read(session: Session, cql: str) -> Any:
    """Prepare a SELECT, marked idempotent so the driver may send it again to the next
    replica when it is slow (the profile's speculative executions) or its connection
    fails: with a node just lost, a read whose coordinator died or has only just come back
    timed out instead (the cluster failure suite). Writes stay unmarked: the writer retries
    whole events itself, and a speculated write would only add load when the cluster is
    slowest."""
    prepared = session.prepare(cql)
    prepared.is_idempotent = True
    return prepared


def is_transient(error: BaseException) -> bool:
    """Return True for errors that a later retry of the same write can cure."""
    return isinstance(error, (*TRANSIENT, DependencyUnavailable))


def answers(session: Session, timeout: float) -> bool:
    """Return True if the cluster answers a trivial query.

    Tells "Cassandra is down" (every request fails) from "this request failed" (a read
    timing out on one huge partition, a replica failing one write) after a transient error.
    """
    try:
        session.execute(PROBE, timeout=timeout)
    except Exception as exc:
        logger.debug("cassandra probe failed: %r", exc)
        return False
    return True


def group_statements(
    mutations: Iterable[Mutation],
    bind: Callable[[Mutation], Statement],
    replicas: Callable[[Statement], Hashable | None] | None = None,
) -> list[Statement]:
    """Turn mutations into as few statements as their replicas allow (UNLOGGED batches).

    A partition's mutations always go together (chunks of MAX_BATCH). With ``replicas``
    (``replica_key``), small partitions owned by the same replicas share one batch too,
    up to BATCH_PARTITIONS partitions and BATCH_BYTES of values: a post's rows in its six
    followers' feeds are one request instead of six. Why that is safe and what it saves:
    the module docstring.
    """
    by_partition: dict[tuple[Any, ...], list[Mutation]] = defaultdict(list)
    for m in mutations:
        by_partition[m.partition].append(m)
    statements: list[Statement] = []
    packs: dict[Hashable, _Pack] = {}
    for group in by_partition.values():
        bound = [bind(m) for m in group]
        key = replicas(bound[0]) if replicas is not None and len(bound) < MAX_BATCH else None
        if key is None:
            for i in range(0, len(bound), MAX_BATCH):
                statements.append(_batch(bound[i : i + MAX_BATCH]))
            continue
        size = sum(len(v) for b in bound for v in b.values if v is not None)
        pack = packs.get(key)
        if pack is not None and not pack.fits(len(bound), size):
            statements.append(_batch(pack.statements))
            pack = None
        if pack is None:
            pack = packs[key] = _Pack()
        pack.add(bound, size)
    statements.extend(_batch(p.statements) for p in packs.values())
    return statements


def replica_key(session: Session) -> Callable[[Statement], Hashable | None]:
    """Return a function naming the replicas of a bound statement's partition.

    None when the driver cannot tell (no routing key, no token map yet): such a partition
    goes in a batch of its own, as every partition did before.
    """
    metadata = session.cluster.metadata

    def key(statement: Statement) -> Hashable | None:
        routing, keyspace = statement.routing_key, statement.keyspace or session.keyspace
        if routing is None or keyspace is None:
            return None
        hosts = metadata.get_replicas(keyspace, routing)
        return frozenset(h.endpoint for h in hosts) if hosts else None

    return key


class _Pack:
    """The statements of partitions with one replica set, collected into one batch."""

    __slots__ = ("bytes", "partitions", "statements")

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self.partitions = 0
        self.bytes = 0

    def fits(self, n: int, size: int) -> bool:
        return (
            self.partitions < BATCH_PARTITIONS
            and len(self.statements) + n <= MAX_BATCH
            and self.bytes + size <= BATCH_BYTES
        )

    def add(self, statements: list[Statement], size: int) -> None:
        self.statements.extend(statements)
        self.partitions += 1
        self.bytes += size


def _batch(statements: Sequence[Statement]) -> Statement:
    """Return the one statement, or an UNLOGGED batch of several."""
    if len(statements) == 1:
        return statements[0]
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    for statement in statements:
        batch.add(statement)
    return batch


def execute_all(session: Session, statements: Sequence[Statement], concurrency: int) -> None:
    """Run statements concurrently (bounded window); raise the first error seen."""
    if not statements:
        return
    results = execute_concurrent(
        session,
        [(s, None) for s in statements],
        concurrency=concurrency,
        raise_on_first_error=False,
    )
    for ok, result in results:
        if not ok:
            raise result
