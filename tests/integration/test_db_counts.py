"""Counts kept by PostgreSQL's own triggers (migration 0004), written to by plain SQL.

Every write here is psycopg2 as the application's role (what the web app, the tools and
an admin script log in as), never the API: the counts on users and shards must come out
exact whoever writes the rows. The functions run as the invoker, so this also proves that
the role's UPDATE grant on users and shards is all the triggers need. The rows are the
test's own (fresh users); the recount and migration checks run in transactions that are
rolled back, so the shared database is left as it was.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest

from feedline.migrate import versions
from feedline.settings import Settings

pytestmark = pytest.mark.integration

USER_COUNTS = """
    SELECT id, follower_count, following_count, shard_count,
           (SELECT count(*) FROM followers WHERE followee_id = u.id),
           (SELECT count(*) FROM followers WHERE follower_id = u.id),
           (SELECT count(*) FROM shards WHERE author_id = u.id)
    FROM users u WHERE id = ANY (%s) ORDER BY id
"""
SHARD_COUNTS = """
    SELECT id, like_count, comment_count,
           (SELECT count(*) FROM likes WHERE shard_id = s.id),
           (SELECT count(*) FROM comments WHERE shard_id = s.id)
    FROM shards s WHERE id = ANY (%s) ORDER BY id
"""


@pytest.fixture
def connect(settings: Settings) -> Iterator[Callable[[], Any]]:
    """Open connections as the application role; close them all at the end."""
    opened: list[Any] = []

    def make() -> Any:
        conn = psycopg2.connect(settings.postgres.dsn(), connect_timeout=5)
        opened.append(conn)
        return conn

    yield make
    for conn in opened:
        conn.close()


def new_users(cur: Any, n: int) -> list[int]:
    handles = [f"c_{secrets.token_hex(6)}" for _ in range(n)]
    cur.execute("INSERT INTO users (handle) SELECT unnest(%s::text[]) RETURNING id", (handles,))
    return sorted(row[0] for row in cur.fetchall())


def new_shards(cur: Any, authors: list[int]) -> list[int]:
    cur.execute(
        "INSERT INTO shards (author_id, body) SELECT unnest(%s::bigint[]), 'by sql' RETURNING id",
        (authors,),
    )
    return sorted(row[0] for row in cur.fetchall())


def user_counts(cur: Any, users: list[int]) -> dict[int, tuple[int, int, int]]:
    """Return each user's stored (followers, following, shards), checked against the rows."""
    cur.execute(USER_COUNTS, (users,))
    found = cur.fetchall()
    for row in found:
        assert row[1:4] == row[4:7], f"user {row[0]}: stored {row[1:4]}, rows say {row[4:7]}"
    return {row[0]: row[1:4] for row in found}


def shard_counts(cur: Any, shards: list[int]) -> dict[int, tuple[int, int]]:
    """Return each shard's stored (likes, comments), checked against the rows."""
    cur.execute(SHARD_COUNTS, (shards,))
    found = cur.fetchall()
    for row in found:
        assert row[1:3] == row[3:5], f"shard {row[0]}: stored {row[1:3]}, rows say {row[3:5]}"
    return {row[0]: row[1:3] for row in found}


def test_plain_sql_inserts_updates_and_deletes_keep_every_count_exact(connect) -> None:
    conn = connect()
    with conn, conn.cursor() as cur:
        a, b, c, d = users = new_users(cur, 4)
        # One multi-row statement, then a repeat that inserts nothing.
        cur.execute(
            "INSERT INTO followers (follower_id, followee_id) VALUES"
            " (%(a)s, %(b)s), (%(c)s, %(b)s), (%(d)s, %(b)s), (%(b)s, %(a)s)",
            {"a": a, "b": b, "c": c, "d": d},
        )
        cur.execute(
            "INSERT INTO followers (follower_id, followee_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (a, b),
        )
        s1, s2, s3 = shards = new_shards(cur, [b, b, a])
        cur.execute(
            "INSERT INTO likes (shard_id, user_id) VALUES (%s, %s), (%s, %s), (%s, %s), (%s, %s)",
            (s1, a, s1, c, s1, d, s3, b),
        )
        cur.execute(
            "INSERT INTO comments (shard_id, author_id, body) VALUES"
            " (%s, %s, 'x'), (%s, %s, 'y'), (%s, %s, 'z') RETURNING id",
            (s1, a, s1, c, s2, a),
        )
        moved = cur.fetchall()[2][0]
    with conn.cursor() as cur:  # committed: what every other session sees now
        assert user_counts(cur, users) == {a: (1, 1, 1), b: (3, 1, 2), c: (0, 1, 0), d: (0, 1, 0)}
        assert shard_counts(cur, shards) == {s1: (3, 2), s2: (0, 1), s3: (1, 0)}
        cur.execute("SELECT prosecdef FROM pg_proc WHERE proname LIKE 'feedline_count%'")
        assert {row[0] for row in cur.fetchall()} == {False}, "runs as the invoker"
    conn.rollback()

    with conn, conn.cursor() as cur:
        # An update that moves a comment moves its count; one that moves nothing counted
        # rewrites no count row (no change event either: xmin stays).
        cur.execute("SELECT id, xmin::text FROM users WHERE id = ANY (%s) ORDER BY id", (users,))
        before = cur.fetchall()
        cur.execute("UPDATE followers SET created_at = now() WHERE followee_id = %s", (b,))
        assert cur.rowcount == 3
        cur.execute("UPDATE comments SET shard_id = %s WHERE id = %s", (s3, moved))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT id, xmin::text FROM users WHERE id = ANY (%s) ORDER BY id", (users,))
        assert cur.fetchall() == before
        assert shard_counts(cur, shards) == {s1: (3, 2), s2: (0, 0), s3: (1, 1)}
        cur.execute("DELETE FROM likes WHERE shard_id = %s AND user_id IN (%s, %s)", (s1, a, c))
        assert shard_counts(cur, shards)[s1] == (1, 2)  # in the same transaction already
    with conn, conn.cursor() as cur:
        # Cascades fire the triggers: the shard takes its like and comments with it, the
        # user their follow of b and their like.
        cur.execute("DELETE FROM shards WHERE id = %s", (s1,))
        cur.execute("DELETE FROM users WHERE id = %s", (c,))
    with conn, conn.cursor() as cur:
        assert user_counts(cur, users) == {a: (1, 1, 1), b: (2, 1, 1), d: (0, 1, 0)}
        assert shard_counts(cur, shards) == {s2: (0, 0), s3: (1, 1)}
        cur.execute("DELETE FROM users WHERE id = ANY (%s)", (users,))


def test_a_rolled_back_write_counts_nothing(connect) -> None:
    conn = connect()
    with conn, conn.cursor() as cur:
        a, b = users = new_users(cur, 2)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO followers (follower_id, followee_id) VALUES (%s, %s)", (a, b))
        new_shards(cur, [a])
        assert user_counts(cur, users) == {a: (0, 1, 1), b: (1, 0, 0)}
    conn.rollback()
    with conn, conn.cursor() as cur:
        assert user_counts(cur, users) == {a: (0, 0, 0), b: (0, 0, 0)}
        cur.execute("DELETE FROM users WHERE id = ANY (%s)", (users,))


def test_parallel_likes_and_follows_from_many_connections_lose_no_count(connect) -> None:
    n = 16
    setup = connect()
    with setup, setup.cursor() as cur:
        author, *fans = users = new_users(cur, n + 1)
        [shard] = new_shards(cur, [author])
    conns = [connect() for _ in range(n)]
    errors: list[BaseException] = []

    def in_parallel(statement: str, args: Callable[[int], tuple[int, ...]]) -> None:
        start = threading.Barrier(n)

        def run(conn: Any, fan: int) -> None:
            try:
                start.wait(timeout=30)
                with conn, conn.cursor() as cur:
                    cur.execute(statement, args(fan))
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=pair) for pair in zip(conns, fans, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors

    in_parallel("INSERT INTO likes (shard_id, user_id) VALUES (%s, %s)", lambda f: (shard, f))
    in_parallel(
        "INSERT INTO followers (follower_id, followee_id) VALUES (%s, %s)", lambda f: (f, author)
    )
    with setup, setup.cursor() as cur:
        assert shard_counts(cur, [shard]) == {shard: (n, 0)}
        assert user_counts(cur, [author])[author] == (n, 0, 1)
    in_parallel("DELETE FROM likes WHERE shard_id = %s AND user_id = %s", lambda f: (shard, f))
    in_parallel(
        "DELETE FROM followers WHERE follower_id = %s AND followee_id = %s", lambda f: (f, author)
    )
    with setup, setup.cursor() as cur:
        assert shard_counts(cur, [shard]) == {shard: (0, 0)}
        assert user_counts(cur, [author])[author] == (0, 0, 1)
        cur.execute("DELETE FROM users WHERE id = ANY (%s)", (users,))


def test_recount_fixes_drifted_counts_and_a_second_run_changes_nothing(connect) -> None:
    conn = connect()
    try:
        with conn.cursor() as cur:
            a, b = users = new_users(cur, 2)
            cur.execute("INSERT INTO followers (follower_id, followee_id) VALUES (%s, %s)", (a, b))
            [shard] = new_shards(cur, [b])
            cur.execute("INSERT INTO likes (shard_id, user_id) VALUES (%s, %s)", (shard, a))
            # Counts as a writer from before the triggers could have left them.
            cur.execute("UPDATE users SET follower_count = 5, shard_count = 0 WHERE id = %s", (b,))
            cur.execute(
                "UPDATE shards SET like_count = 0, comment_count = 2 WHERE id = %s", (shard,)
            )
            cur.execute("SELECT feedline_recount()")
            assert cur.fetchone()[0] >= 2  # at least these two rows (others may have drifted)
            assert user_counts(cur, users) == {a: (0, 1, 0), b: (1, 0, 1)}
            assert shard_counts(cur, [shard]) == {shard: (1, 0)}
            # Again: no row is rewritten (an update would give it a new ctid, and emit a
            # change event once committed).
            versions_before = row_versions(cur, users, shard)
            cur.execute("SELECT feedline_recount()")
            assert row_versions(cur, users, shard) == versions_before
    finally:
        conn.rollback()


def row_versions(cur: Any, users: list[int], shard: int) -> list[tuple[Any, ...]]:
    cur.execute(
        "SELECT id, ctid::text FROM users WHERE id = ANY (%s)"
        " UNION ALL SELECT id, ctid::text FROM shards WHERE id = %s ORDER BY 1, 2",
        (users, shard),
    )
    return cur.fetchall()


def test_the_counts_migrations_run_again_without_changing_anything(settings) -> None:
    paths = [p for version, p in versions("postgres", "sql") if version[:5] in ("0004_", "0005_")]
    assert len(paths) == 2
    conn = psycopg2.connect(settings.postgres.owner_dsn(), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = '10s'")
            for path in paths:  # DDL and recount again, in one transaction
                cur.execute(path.read_text())
            cur.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%\\_counted\\_%'"
                " AND NOT tgisinternal"
            )
            # insert and delete on four tables, update on three (not shards), each once
            assert cur.fetchone() == (11,)
            cur.execute(
                "SELECT DISTINCT p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
                " WHERE t.tgname LIKE '%\\_counted\\_%' AND NOT t.tgisinternal"
            )
            assert {name for (name,) in cur.fetchall()} == STATIC_COUNT_FUNCTIONS
    finally:
        conn.rollback()
        conn.close()


STATIC_COUNT_FUNCTIONS = {
    "feedline_count_followers",
    "feedline_count_shards",
    "feedline_count_likes",
    "feedline_count_comments",
}


def test_count_triggers_run_static_sql(pg_conn) -> None:
    """No trigger re-plans its queries per statement (0005): no dynamic EXECUTE left.

    0004 built its queries as text and ran them with EXECUTE, planned again on every
    statement that fired it (~14% of PostgreSQL's CPU under the mixed write load).
    """
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT p.proname, p.prosrc FROM pg_trigger t"
            " JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE t.tgname LIKE '%\\_counted\\_%' AND NOT t.tgisinternal"
        )
        functions = dict(cur.fetchall())
    assert set(functions) == STATIC_COUNT_FUNCTIONS
    dynamic = {name for name, src in functions.items() if re.search(r"\bEXECUTE\b", src, re.I)}
    assert dynamic == set()
