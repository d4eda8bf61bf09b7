"""Least-privilege PostgreSQL roles (issue 14) on the real stack: the application's role
changes rows and nothing else, the owner owns everything, Debezium's role replicates and
reads only the published tables, and the connector logs in as it.

Every change here is rolled back or refused, so the shared database is left as it was.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg2
import psycopg2.errors
import psycopg2.extras
import pytest
import yaml

from feedline.connector import TABLES, config, register
from feedline.settings import ROOT, Settings

pytestmark = pytest.mark.integration

REFUSED = (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ObjectNotInPrerequisiteState)


def connect(settings: Settings, user: str, password: str, **kwargs):
    pg = settings.postgres
    return psycopg2.connect(
        host=pg.host, port=pg.port, dbname=pg.database, user=user, password=password,
        connect_timeout=5, **kwargs,
    )  # fmt: skip


@pytest.fixture
def app_conn(settings):
    conn = connect(settings, settings.postgres.user, settings.postgres.password)
    yield conn
    conn.close()


@pytest.fixture
def replication_conn(settings):
    pg = settings.postgres
    conn = connect(settings, pg.replication_user, pg.replication_password)
    conn.autocommit = True
    yield conn
    conn.close()


def refused(conn, statement: str) -> bool:
    """Run ``statement`` in its own transaction; True if PostgreSQL refused it for privileges."""
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    except REFUSED:
        return True
    finally:
        conn.rollback()
    return False


def role(settings, name: str) -> dict:
    with connect(settings, settings.postgres.user, settings.postgres.password) as conn:
        cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
        cur.execute(
            "SELECT rolsuper, rolreplication, rolcreaterole, rolcreatedb, rolbypassrls,"
            " rolcanlogin FROM pg_roles WHERE rolname = %s",
            (name,),
        )
        row = cur.fetchone()
    conn.close()
    assert row is not None, f"role {name} missing"
    return dict(row)


def test_the_three_roles_are_distinct_and_none_is_a_superuser(settings):
    pg = settings.postgres
    assert len({pg.user, pg.owner_user, pg.replication_user}) == 3
    app, owner, repl = (role(settings, n) for n in (pg.user, pg.owner_user, pg.replication_user))
    for attrs in (app, owner, repl):
        assert attrs["rolcanlogin"]
        assert not (attrs["rolsuper"] or attrs["rolcreaterole"] or attrs["rolcreatedb"])
        assert not attrs["rolbypassrls"]
    assert not app["rolreplication"]
    assert repl["rolreplication"]


def test_the_app_role_cannot_change_the_schema(settings, app_conn):
    name = f"t_{secrets.token_hex(4)}"
    assert refused(app_conn, f"CREATE TABLE {name} (id int)")
    assert refused(app_conn, f"CREATE TEMPORARY TABLE {name} (id int)")
    assert refused(app_conn, f"CREATE SCHEMA {name}")
    assert refused(app_conn, "DROP TABLE likes")
    assert refused(app_conn, "TRUNCATE likes")
    assert refused(app_conn, "ALTER TABLE users ADD COLUMN x int")
    assert refused(app_conn, "CREATE INDEX ON users (created_at)")
    assert refused(app_conn, "ALTER TABLE users DISABLE TRIGGER ALL")
    assert refused(app_conn, "DROP PUBLICATION feedline_pub")
    assert refused(app_conn, "INSERT INTO schema_migrations (version) VALUES ('x')")
    assert refused(app_conn, "SELECT pg_create_logical_replication_slot('x', 'pgoutput')")


def test_the_app_role_cannot_open_a_replication_connection(settings):
    pg = settings.postgres
    with pytest.raises(psycopg2.OperationalError):
        connect(
            settings, pg.user, pg.password,
            connection_factory=psycopg2.extras.LogicalReplicationConnection,
        ).close()  # fmt: skip


def test_the_app_role_changes_rows(app_conn):
    handle = f"t_{secrets.token_hex(6)}"
    try:
        with app_conn.cursor() as cur:
            cur.execute("INSERT INTO users (handle) VALUES (%s) RETURNING id", (handle,))
            user_id = cur.fetchone()[0]
            cur.execute("INSERT INTO shards (author_id, body) VALUES (%s, 'x') RETURNING id",
                        (user_id,))  # fmt: skip
            cur.execute("UPDATE users SET shard_count = 1 WHERE id = %s", (user_id,))
            cur.execute("SELECT shard_count FROM users WHERE id = %s FOR UPDATE", (user_id,))
            assert cur.fetchone() == (1,)
            cur.execute("DELETE FROM users WHERE id = %s", (user_id,))  # cascades as the owner
            cur.execute("SELECT count(*) FROM shards WHERE author_id = %s", (user_id,))
            assert cur.fetchone() == (0,)
            cur.execute("SELECT count(*) FROM user_tokens WHERE user_id = %s", (user_id,))
            cur.execute("SELECT version FROM schema_migrations")  # may see which versions ran
    finally:
        app_conn.rollback()  # nothing committed: no change event either


def test_the_owner_owns_every_table_and_the_database(settings, app_conn):
    with app_conn.cursor() as cur:
        cur.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            " AND tableowner <> %s",
            (settings.postgres.owner_user,),
        )
        assert cur.fetchall() == []
        cur.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        )
        assert cur.fetchone() == (settings.postgres.owner_user,)
    app_conn.rollback()


def test_the_replication_role_reads_only_the_published_tables(replication_conn):
    with replication_conn.cursor() as cur:
        for table in TABLES:
            cur.execute(f"SELECT count(*) FROM {table} WHERE false")  # noqa: S608
    for table in ("user_tokens", "user_passwords"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            replication_conn.cursor().execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608
    with pytest.raises(REFUSED):
        replication_conn.cursor().execute("CREATE TABLE nope (id int)")
    with pytest.raises(REFUSED):
        replication_conn.cursor().execute("DELETE FROM users WHERE false")


def test_the_replication_role_streams_the_publication(settings):
    """A temporary slot (dropped when the session ends) on the publication, as Debezium."""
    pg = settings.postgres
    conn = connect(
        settings, pg.replication_user, pg.replication_password,
        connection_factory=psycopg2.extras.LogicalReplicationConnection,
    )  # fmt: skip
    try:
        cur = conn.cursor()
        slot = f"roles_test_{secrets.token_hex(4)}"
        cur.execute(f"CREATE_REPLICATION_SLOT {slot} TEMPORARY LOGICAL pgoutput")
        cur.start_replication(
            slot_name=slot,
            options={"proto_version": "1", "publication_names": settings.connect.publication_name},
        )
    finally:
        conn.close()


def test_the_connector_logs_in_as_the_replication_role(settings):
    pg = settings.postgres
    want = config(settings)
    assert want["database.user"] == pg.replication_user
    assert want["database.password"] == "${env:FEEDLINE_PG_REPLICATION_PASSWORD}"
    assert register.registered_user(settings) == pg.replication_user, (
        "the running connector still logs in as another role: restart Connect"
        " (make down && make stack-up) so that it has FEEDLINE_PG_REPLICATION_PASSWORD"
    )


def test_connect_gets_only_the_replication_password(settings):
    from feedline.stack.lifecycle import services

    connect_svc = next(s for s in services(settings) if s.name == "connect")
    env = connect_svc.env()
    assert env["FEEDLINE_PG_REPLICATION_PASSWORD"] == settings.postgres.replication_password
    assert not [k for k in env if k.startswith("FEEDLINE_PG_") and "REPLICATION" not in k]


def test_compose_has_no_superuser_app_role():
    compose = yaml.safe_load(Path(ROOT, "docker", "compose.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["environment"]["POSTGRES_USER"] == "postgres"
    init = services["init"]
    assert "PGUSER" in init["environment"]  # the superuser: the roles step only
    steps = " ".join(init["entrypoint"])
    assert steps.index("feedline.stack.postgres") < steps.index("feedline.cli migrate")
    assert "FEEDLINE_PG_USER" not in init["environment"]  # the app role is feedline_app
    connect_env = services["connect"]["environment"]
    assert "FEEDLINE_PG_REPLICATION_PASSWORD" in connect_env
    assert "FEEDLINE_PG_PASSWORD" not in connect_env
