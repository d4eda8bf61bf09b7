"""Apply the versioned schema files in migrations/{postgres,cassandra}, each exactly once.

Each store keeps a ``schema_migrations`` table of applied versions (the file name without
its suffix). PostgreSQL files run in one transaction each, under an advisory lock so two
runners cannot race, as the owner role (``FEEDLINE_PG_OWNER_USER``); the group roles they
grant to must exist first (``feedline stack up``, or ``python -m feedline.stack.postgres``).
Cassandra has no transactions: its files use IF NOT EXISTS so that re-running a partly
applied file converges.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

from feedline.errors import MigrationError
from feedline.settings import CassandraSettings, PostgresSettings, Settings

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_ID = 0x66656564  # "feed": pg_advisory_xact_lock key for migration runs
IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")


def versions(store: str, suffix: str) -> list[tuple[str, Path]]:
    return [(p.stem, p) for p in sorted((MIGRATIONS / store).glob(f"*.{suffix}"))]


def migrate(settings: Settings) -> list[str]:
    """Apply every pending migration to both stores; return what was applied."""
    return migrate_postgres(settings.postgres) + migrate_cassandra(settings.cassandra)


def migrate_postgres(pg: PostgresSettings) -> list[str]:
    import psycopg2

    try:  # as the owner: the application's role may not create or alter anything
        conn = psycopg2.connect(pg.owner_dsn(), connect_timeout=5)
    except psycopg2.Error as exc:
        raise MigrationError(f"postgres: cannot connect: {_first_line(exc)}") from None
    applied = []
    try:
        for version, path in versions("postgres", "sql"):
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                cur.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,))
                if cur.fetchone():
                    continue
                cur.execute(path.read_text())
                cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(f"postgres/{version}")
    except psycopg2.Error as exc:
        raise MigrationError(f"postgres {version}: {_first_line(exc)}") from None
    finally:
        conn.close()
    return applied


def migrate_cassandra(cs: CassandraSettings) -> list[str]:
    if not IDENT.match(cs.keyspace):
        raise MigrationError(f"cassandra: invalid keyspace name {cs.keyspace!r}")
    cluster, session = connect(cs)
    applied = []
    try:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {cs.keyspace} WITH replication = {_replication(cs)}"
        )
        session.set_keyspace(cs.keyspace)
        session.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY,"
            " applied_at timestamp)"
        )
        done = {row.version for row in session.execute("SELECT version FROM schema_migrations")}
        for version, path in versions("cassandra", "cql"):
            if version in done:
                continue
            for statement in statements(path.read_text()):
                session.execute(statement)
            session.execute(
                "INSERT INTO schema_migrations (version, applied_at)"
                " VALUES (%s, toTimestamp(now()))",
                (version,),
            )
            applied.append(f"cassandra/{version}")
    except Exception as exc:
        raise MigrationError(f"cassandra: {_first_line(exc)}") from None
    finally:
        cluster.shutdown()
    return applied


def connect(cs: CassandraSettings, timeout: float = 10.0):
    """Open a Cassandra session outside any keyspace (the migration may create it)."""
    from feedline import cassandra

    try:
        return cassandra.connect(cs, request_timeout=timeout, use_keyspace=False)
    except Exception as exc:
        raise MigrationError(f"cassandra: cannot connect: {_first_line(exc)}") from None


def _replication(cs: CassandraSettings) -> str:
    """Re-render the replication map from a parsed literal, so nothing else reaches the DDL."""
    try:
        value = ast.literal_eval(cs.replication)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int) for k, v in value.items()
    ):
        raise MigrationError(f"cassandra: replication must be a map, got {cs.replication!r}")
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in value.items()) + "}"


def statements(text: str) -> list[str]:
    """Split a CQL file on ';' at line ends, dropping ``--`` comment lines."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    parts = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip()]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
