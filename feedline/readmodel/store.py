"""Query the Cassandra read model for the web workers: lazy session, prepared reads only.

The reads are ``queries.web()``: derived from the table definitions, shared with verify.

The session opens on first use (after gunicorn forks, never at import). A failed connect
is remembered for ``cassandra_retry_s`` so a dead Cassandra answers 503 at once instead of
costing a connect attempt per request; once connected, the driver reconnects by itself
(the node comes back within its reconnection policy's 0.5..5 s). Every query is prepared
and parameterised; pages are clustering-key range queries, never offsets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from feedline.cassandra import TRANSIENT, connect, prepare_read
from feedline.errors import DependencyUnavailable
from feedline.readmodel import queries
from feedline.settings import CassandraSettings, ReadSettings

logger = logging.getLogger(__name__)

ERRORS = Counter("feedline_read_cassandra_errors", "Read-model queries that failed")

QUERIES = queries.web()


class ReadStore:
    """Run the read model's prepared queries; Cassandra trouble is DependencyUnavailable."""

    def __init__(self, cassandra: CassandraSettings, reads: ReadSettings):
        self._settings = cassandra
        self._timeout = reads.cassandra_timeout_s
        self._retry_s = reads.cassandra_retry_s
        self._concurrency = reads.cassandra_concurrency
        self._lock = threading.Lock()
        self._cluster: Any = None
        self._session: Any = None
        self._prepared: dict[str, Any] = {}
        self._retry_at = 0.0

    def _ready(self) -> tuple[Any, dict[str, Any]]:
        if self._session is not None:
            return self._session, self._prepared
        with self._lock:
            if self._session is None:
                if time.monotonic() < self._retry_at:
                    raise DependencyUnavailable("cassandra", "not connected (retrying shortly)")
                try:
                    cluster, session = connect(self._settings, request_timeout=self._timeout)
                    prepared = {name: prepare_read(session, cql) for name, cql in QUERIES.items()}
                except Exception as exc:
                    self._retry_at = time.monotonic() + self._retry_s
                    ERRORS.inc()
                    logger.warning("cassandra connect failed: %s", exc)
                    raise DependencyUnavailable("cassandra", str(exc)[:200]) from exc
                self._cluster, self._prepared, self._session = cluster, prepared, session
        return self._session, self._prepared

    def rows(self, name: str, *params: Any) -> list[Any]:
        """Return every row of one prepared query."""
        return self.run([(name, params)])[0]

    def run(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Run ``(query name, binds)`` pairs concurrently; return the rows of each.

        They go in waves of ``cassandra_concurrency``, each wave read before the next is
        sent, so one call never has more in flight and stops sending at its first error.
        The driver's request timeout runs from the moment a request is handed to it: a
        stream process re-reading a thousand feeds in one round (``stream.listener``) used
        to send them all, and on the 3-node cluster 2,000 feed reads at once had 555 time
        out (6,000: 4,622), each ending its stream; 64 at a time, none did.
        """
        session, prepared = self._ready()
        statements = [(prepared[name], tuple(p)) for name, p in queries]
        window = self._concurrency
        try:
            rows: list[list[Any]] = []
            for start in range(0, len(statements), window):
                wave = statements[start : start + window]
                futures = [session.execute_async(query, binds) for query, binds in wave]
                rows.extend(list(f.result()) for f in futures)
            return rows
        except TRANSIENT as exc:
            ERRORS.inc()
            raise DependencyUnavailable("cassandra", type(exc).__name__) from exc

    def ping(self) -> None:
        """Probe for /health: one cheap local query (raises when Cassandra is unusable)."""
        session, _ = self._ready()
        try:
            session.execute("SELECT release_version FROM system.local", timeout=self._timeout)
        except TRANSIENT as exc:
            raise DependencyUnavailable("cassandra", type(exc).__name__) from exc

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
