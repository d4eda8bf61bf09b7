"""The pool: one transaction per unit of work, one retry on a lost connection, then 503."""

from __future__ import annotations

import dataclasses
import secrets

import falcon.testing
import psycopg2
import pytest

from feedline.db import Database
from feedline.errors import DependencyUnavailable
from feedline.http.app import create_app, create_ops_app
from feedline.http.deps import Deps
from tests.integration.http.conftest import PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture
def small_db(settings):
    """A private one-connection pool, so that its backend is ours alone to terminate."""
    db = Database(dataclasses.replace(settings.postgres, pool_min=1, pool_max=1))
    yield db
    db.close()


@pytest.fixture
def small_client(settings, small_db):
    return falcon.testing.TestClient(create_app(Deps(settings=settings, db=small_db)))


def backend_pid(db: Database) -> int:
    return db.run(lambda cur: cur.execute("SELECT pg_backend_pid()") or cur.fetchone()[0])


def terminate(settings, pid: int) -> None:
    with psycopg2.connect(settings.postgres.dsn()) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert cur.fetchone() == (True,)
    conn.close()


def test_an_error_rolls_the_whole_unit_back(database, query):
    handle = f"t_{secrets.token_hex(6)}"

    def work(cur):
        cur.execute("INSERT INTO users (handle) VALUES (%s)", (handle,))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        database.run(work)
    assert query("SELECT count(*) FROM users WHERE handle = %s", handle) == [(0,)]


def two_txids(cur) -> tuple[int, int]:
    cur.execute("SELECT txid_current()")
    first = cur.fetchone()[0]
    cur.execute("SELECT txid_current()")
    return first, cur.fetchone()[0]


def test_a_unit_of_work_is_one_transaction_and_a_read_is_not(database):
    first, second = database.run(two_txids)
    assert first == second  # BEGIN went with the first statement; both ran in it
    assert database.run(two_txids)[0] != first  # and it ended: the next unit is a new one
    first, second = database.read(two_txids)
    assert first != second  # outside a transaction each statement commits by itself


def test_a_terminated_connection_is_replaced_and_the_request_succeeds(
    settings, small_db, small_client, query
):
    resp = small_client.simulate_post(
        "/v1/users", json={"handle": f"t_{secrets.token_hex(6)}", "password": PASSWORD}
    )
    assert resp.status_code == 201
    headers = {"Authorization": f"Bearer {resp.json['token']}"}
    user_id = resp.json["id"]

    old = backend_pid(small_db)
    terminate(settings, old)
    # The pooled connection is dead; both the auth lookup and the write must get through.
    resp = small_client.simulate_post("/v1/shards", json={"body": "after"}, headers=headers)
    assert resp.status_code == 201, resp.text
    assert backend_pid(small_db) != old
    assert query("SELECT count(*) FROM shards WHERE author_id = %s", user_id) == [(1,)]
    assert query("SELECT shard_count FROM users WHERE id = %s", user_id) == [(1,)]


def test_a_second_loss_gives_up_with_dependency_unavailable(small_db):
    attempts = []

    def suicidal(cur):
        attempts.append(1)
        cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(DependencyUnavailable):
        small_db.run(suicidal)
    assert len(attempts) == 2
    assert small_db.run(lambda cur: cur.execute("SELECT 1") or cur.fetchone()) == (1,)


def test_an_unreachable_database_is_a_json_503(settings):
    db = Database(dataclasses.replace(settings.postgres, port=1, connect_timeout_s=1))
    deps = Deps(settings=settings, db=db)
    client = falcon.testing.TestClient(create_app(deps))
    resp = client.simulate_post(
        "/v1/users", json={"handle": f"t_{secrets.token_hex(6)}", "password": PASSWORD}
    )
    assert resp.status_code == 503
    assert set(resp.json) == {"title", "description"}
    assert resp.headers["retry-after"] == "1"
    assert client.simulate_get("/health").status_code == 200  # liveness: the web serves
    resp = falcon.testing.TestClient(create_ops_app(deps)).simulate_get("/health/ready")
    assert resp.status_code == 503
    assert resp.json["status"] == "degraded"
    assert resp.json["checks"]["postgresql"]["ok"] is False
