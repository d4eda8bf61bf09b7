"""Rows written by plain SQL reach the read model with exact counts (issue 16).

No API here: users, follows, shards, likes and comments are inserted and deleted with
psycopg2 as the application's role, the way psql, a migration or an admin tool would.
PostgreSQL's triggers (migration 0004) keep the counts in each statement's transaction;
Debezium carries the count rows' updates; the pipeline copies them into Cassandra. The
counts must match the rows in PostgreSQL, the read model must converge to them, and
``feedline verify`` over everyone involved must report nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg2
import pytest

from tests.integration.pipeline.conftest import Pipeline, eventually
from tests.integration.pipeline.test_feed_index import run_verify

pytestmark = pytest.mark.integration


def test_counts_written_by_plain_sql_are_exact_in_postgres_and_in_the_read_model(
    pipeline: Pipeline, settings: Any, cassandra_session: Any
) -> None:
    conn = psycopg2.connect(settings.postgres.dsn(), connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            handles = [f"s_{secrets.token_hex(6)}" for _ in range(4)]
            cur.execute(
                "INSERT INTO users (handle) SELECT unnest(%s::text[]) RETURNING id", (handles,)
            )
            author, fan1, fan2, fan3 = users = sorted(row[0] for row in cur.fetchall())
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO followers (follower_id, followee_id) SELECT unnest(%s::bigint[]), %s",
                ([fan1, fan2, fan3], author),
            )
            cur.execute(
                "INSERT INTO shards (author_id, body) VALUES (%s, 'one'), (%s, 'two') RETURNING id",
                (author, author),
            )
            kept, dropped = sorted(row[0] for row in cur.fetchall())
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO likes (shard_id, user_id) SELECT %s, unnest(%s::bigint[])",
                (kept, [fan1, fan2, fan3]),
            )
            cur.execute(
                "INSERT INTO comments (shard_id, author_id, body)"
                " VALUES (%s, %s, 'hi'), (%s, %s, 'yo'), (%s, %s, 'gone with it')",
                (kept, fan1, kept, fan2, dropped, fan1),
            )
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM likes WHERE shard_id = %s AND user_id = %s", (kept, fan2))
            cur.execute("DELETE FROM followers WHERE follower_id = %s", (fan3,))
            cur.execute("DELETE FROM shards WHERE id = %s", (dropped,))
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT id, follower_count, following_count, shard_count FROM users"
                " WHERE id = ANY (%s) ORDER BY id",
                (users,),
            )
            in_postgres = {row[0]: row[1:] for row in cur.fetchall()}
            cur.execute("SELECT like_count, comment_count FROM shards WHERE id = %s", (kept,))
            shard_in_postgres = cur.fetchone()
    finally:
        conn.close()
    assert in_postgres == {
        author: (2, 0, 1),
        fan1: (0, 1, 0),
        fan2: (0, 1, 0),
        fan3: (0, 0, 0),
    }
    assert shard_in_postgres == (2, 2)

    def converged() -> None:
        for user_id, counts in in_postgres.items():
            row = cassandra_session.execute(
                "SELECT follower_count, following_count, shard_count FROM users_by_id"
                " WHERE user_id = %s",
                (user_id,),
            ).one()
            assert row is not None and tuple(row) == counts, (user_id, row)
        row = cassandra_session.execute(
            "SELECT like_count, comment_count FROM shards_by_id WHERE shard_id = %s", (kept,)
        ).one()
        assert row is not None and tuple(row) == shard_in_postgres, row

    eventually(converged, timeout=60)
    assert "verify: OK, 0 differences" in run_verify(users)
