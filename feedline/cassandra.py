"""Connect to Cassandra and apply mutations the way the read model needs.

Mutations of one partition go together in an UNLOGGED batch (one round trip, applied
atomically on that partition's replicas); different partitions run concurrently as
separate async statements with a bounded window. A LOGGED batch across partitions would
pay the batchlog for nothing: every mutation is idempotent and timestamped, so a retry
simply converges.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
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

MAX_BATCH = 30  # statements per UNLOGGED batch: stays under Cassandra's batch size warnings
ROW_TYPES_MAX = 512  # distinct column lists remembered by named_rows (queries are fixed)


def named_rows(colnames: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Any]:
    """Return the driver's named-tuple rows, making each column list's class only once.

    Why: the driver's ``named_tuple_factory`` builds a new namedtuple class for every
    result, ~40 µs of CPU each, a visible share of a read-model cache miss. The class
    is the driver's own (made on first sight of a column list), so rows are identical.
    """
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


def connect(
    settings: CassandraSettings, request_timeout: float = 10.0, use_keyspace: bool = True
) -> tuple[Cluster, Session]:
    """Open a session with token-aware routing and QUORUM-local writes.

    The session is on the settings' keyspace unless ``use_keyspace`` is False (migrations,
    which may have to create it). A failed connect shuts its cluster's threads down.
    """
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        request_timeout=request_timeout,
        row_factory=named_rows,
    )
    cluster = Cluster(
        contact_points=list(settings.hosts),
        port=settings.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        # v4, not v5: the driver frames and checksums v5 segments in Python, ~90 µs of CPU
        # per query here (a fifth of a read-model query's client cost) for nothing that
        # Feedline uses; TCP already checksums the bytes.
        protocol_version=4,
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
    mutations: Iterable[Mutation], bind: Callable[[Mutation], Statement]
) -> list[Statement]:
    """Turn mutations into one statement per partition (chunked UNLOGGED batches)."""
    by_partition: dict[tuple[Any, ...], list[Mutation]] = defaultdict(list)
    for m in mutations:
        by_partition[m.partition].append(m)
    statements: list[Statement] = []
    for group in by_partition.values():
        for i in range(0, len(group), MAX_BATCH):
            chunk = group[i : i + MAX_BATCH]
            if len(chunk) == 1:
                statements.append(bind(chunk[0]))
                continue
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for m in chunk:
                batch.add(bind(m))
            statements.append(batch)
    return statements


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
