"""Lend PostgreSQL connections from a pool, one transaction per unit of work.

The pool is created lazily on first use, so a gunicorn worker connects after the fork and
nothing connects at import time. A connection the server has dropped (restart, failover,
``pg_terminate_backend``) is only noticed when it is used; :meth:`Database.run` therefore
retries a unit of work once on a verified connection when it is safe, that is when the
failure happened before ``COMMIT`` was sent. Anything else becomes
:class:`~feedline.errors.DependencyUnavailable`, which the web layer turns into a 503.

Round trips are most of what a write costs the web in CPU, so a unit of work takes as
few as it can: psycopg2 would open each transaction with a ``BEGIN`` of its own, one round
trip before the first statement; the pooled connections are in autocommit mode instead
and :class:`_TxCursor` sends ``BEGIN`` in the same message as the first statement. A
single-statement write is then two round trips (``BEGIN; <statement>``, ``COMMIT``), and
:meth:`Database.read` runs a read-only statement in one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import TypeVar

import psycopg2
import psycopg2.extensions
import psycopg2.pool

from feedline.errors import DependencyUnavailable
from feedline.settings import PostgresSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")
Cursor = psycopg2.extensions.cursor
Connection = psycopg2.extensions.connection

# What a dropped or unreachable server looks like to psycopg2.
LOST = (psycopg2.OperationalError, psycopg2.InterfaceError)


class _Lost(Exception):
    """Signal that the connection died before COMMIT, so the work may be retried."""


class _TxCursor(psycopg2.extensions.cursor):
    """Send ``BEGIN`` with the cursor's first statement: one round trip, not two.

    The simple query protocol runs ``BEGIN;<statement>`` in one message; the result is the
    statement's. Nothing is committed until :meth:`Database.transaction` sends ``COMMIT``,
    so a connection lost before that still leaves the unit of work safe to retry.
    """

    begun = False

    def execute(self, query: str | bytes, vars: object = None) -> None:
        if not self.begun:
            self.begun = True
            query = (b"BEGIN;" + query) if isinstance(query, bytes) else ("BEGIN;" + query)
        super().execute(query, vars)

    def executemany(self, query: str | bytes, vars_list: object) -> None:
        if not self.begun:  # not on any hot path: BEGIN on its own
            self.begun = True
            super().execute("BEGIN")
        super().executemany(query, vars_list)


class Database:
    """Own a ThreadedConnectionPool and run units of work in transactions on it."""

    def __init__(self, settings: PostgresSettings, checkout_timeout_s: float = 5.0):
        self._settings = settings
        self._checkout_timeout_s = checkout_timeout_s
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._lock = threading.Lock()
        # ThreadedConnectionPool raises at once when exhausted; make callers wait instead.
        self._slots = threading.BoundedSemaphore(settings.pool_max)

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        with self._lock:
            if self._pool is None:
                s = self._settings
                # psycopg2 keeps at most ``minconn`` idle connections and closes the rest
                # when returned: pool_min is how many stay open (>= threads per worker).
                try:
                    self._pool = psycopg2.pool.ThreadedConnectionPool(
                        min(s.pool_min, s.pool_max),
                        s.pool_max,
                        s.dsn(),
                        connect_timeout=s.connect_timeout_s,
                        application_name="feedline-web",
                        options=f"-c timezone=UTC -c statement_timeout={s.statement_timeout_ms}",
                    )
                except LOST as exc:
                    raise DependencyUnavailable("postgresql", _first_line(exc)) from exc
            return self._pool

    def close(self) -> None:
        """Close every pooled connection (at worker exit)."""
        with self._lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None

    @contextmanager
    def _checkout(self, verify: bool = False) -> Iterator[Connection]:
        if not self._slots.acquire(timeout=self._checkout_timeout_s):
            raise DependencyUnavailable("postgresql", "connection pool exhausted")
        try:
            conn = self._connect(verify)
            conn.autocommit = True  # transactions begin with their first statement
            broken = False
            try:
                yield conn
            except (_Lost, DependencyUnavailable, *LOST):
                broken = True
                raise
            finally:
                self._get_pool().putconn(conn, close=broken or bool(conn.closed))
        finally:
            self._slots.release()

    def _connect(self, verify: bool) -> Connection:
        """Take a pooled connection; when ``verify``, skip idle ones the server dropped."""
        pool = self._get_pool()
        for _ in range(self._settings.pool_max + 1):
            try:
                conn = pool.getconn()
            except LOST as exc:
                raise DependencyUnavailable("postgresql", _first_line(exc)) from exc
            if not verify or _alive(conn):
                return conn
            pool.putconn(conn, close=True)
        raise DependencyUnavailable("postgresql", "no live connection")

    @contextmanager
    def transaction(self, verify: bool = False) -> Iterator[Cursor]:
        """Yield a cursor inside a transaction: commit on success, roll back on error.

        A connection lost before COMMIT raises the internal ``_Lost`` (retryable, see
        :meth:`run`); one lost during COMMIT raises DependencyUnavailable, because whether
        the transaction committed is unknown and repeating it could apply it twice.
        """
        with self._checkout(verify) as conn, conn.cursor(cursor_factory=_TxCursor) as cur:
            try:
                yield cur
            except LOST as exc:
                _rollback_quietly(conn)
                raise _Lost(_first_line(exc)) from exc
            except BaseException:
                _rollback_quietly(conn)
                raise
            if cur.begun:  # else no statement ran: there is no transaction to end
                try:
                    cur.execute("COMMIT")
                except LOST as exc:
                    raise DependencyUnavailable("postgresql", _first_line(exc)) from exc

    @contextmanager
    def _statements(self, verify: bool = False) -> Iterator[Cursor]:
        """Yield a cursor outside any transaction: each statement commits by itself."""
        with self._checkout(verify) as conn:
            try:
                with conn.cursor() as cur:
                    yield cur
            except LOST as exc:
                raise _Lost(_first_line(exc)) from exc

    def run(self, work: Callable[[Cursor], T]) -> T:
        """Run ``work(cursor)`` in one transaction, retrying once if the connection died."""
        return self._retrying(self.transaction, work)

    def read(self, work: Callable[[Cursor], T]) -> T:
        """Run ``work(cursor)``, which must only read, outside a transaction.

        For a single ``SELECT`` (a token lookup): one round trip instead of three. Each
        statement sees its own snapshot, and since nothing is written, a lost connection
        is retried once whatever it was doing.
        """
        return self._retrying(self._statements, work)

    def _retrying(self, unit: Callable[..., AbstractContextManager[Cursor]], work: Callable) -> T:
        try:
            with unit() as cur:
                return work(cur)
        except _Lost as exc:
            logger.warning("PostgreSQL connection lost (%s); retrying once", exc)
        try:
            with unit(verify=True) as cur:
                return work(cur)
        except _Lost as exc:
            raise DependencyUnavailable("postgresql", str(exc)) from exc

    def ping(self) -> None:
        """Run ``SELECT 1`` or raise DependencyUnavailable (for /health)."""
        self.read(lambda cur: cur.execute("SELECT 1"))


def _alive(conn: Connection) -> bool:
    if conn.closed:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.rollback()
    except LOST:
        return False
    return True


def _rollback_quietly(conn: Connection) -> None:
    if conn.closed:
        return
    with suppress(LOST), conn.cursor() as cur:
        cur.execute("ROLLBACK")  # autocommit: conn.rollback() would send nothing


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
