"""Seed bench data fast: bulk SQL in one transaction, or read-model rows written directly.

Users and their tokens go into PostgreSQL exactly as signup stores them (SHA-256 of the
token), so the API authenticates them like any user; their change events flow through
Debezium like any other. Rows that only the read model needs (a million-follower author's
followers_by_user partition, pre-filled feeds for the read benchmark) are written straight
into the bench keyspace: the benchmark measures what happens next, not the seeding.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2
import psycopg2.extras
from cassandra.query import BatchStatement, BatchType

from feedline import statements as st
from feedline.http.auth import hash_token, new_token
from feedline.settings import Settings


@dataclass(frozen=True)
class User:
    id: int
    token: str


def pg_connect(settings: Settings) -> Any:
    return psycopg2.connect(settings.postgres.dsn())


_BATCHES = itertools.count()  # handles stay unique whatever prefixes sections choose


def create_users(settings: Settings, prefix: str, n: int) -> list[User]:
    """Insert ``n`` users with tokens in one transaction; handles are ``<prefix><k>_<i>``,
    ``k`` counting the calls of this process (two sections once chose the same prefix)."""
    prefix = f"{prefix}{next(_BATCHES)}"
    tokens = [new_token() for _ in range(n)]
    with pg_connect(settings) as conn, conn.cursor() as cur:
        rows = psycopg2.extras.execute_values(
            cur,
            "INSERT INTO users (handle) VALUES %s RETURNING id",
            [(f"{prefix}_{i}",) for i in range(n)],
            page_size=1000,
            fetch=True,
        )
        ids = [r[0] for r in rows]
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO user_tokens (token_hash, user_id) VALUES %s",
            [(hash_token(t), i) for t, i in zip(tokens, ids, strict=True)],
            page_size=1000,
        )
    conn.close()
    return [User(i, t) for i, t in zip(ids, tokens, strict=True)]


def follow_graph(settings: Settings, users: list[User], per_user: int, rng: random.Random) -> set:
    """Make each user follow ``per_user`` random others; keep the users' counts exact."""
    ids = [u.id for u in users]
    edges = set()
    for f in ids:
        others = [e for e in rng.sample(ids, min(per_user + 1, len(ids))) if e != f]
        edges.update((f, e) for e in others[:per_user])
    with pg_connect(settings) as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur, "INSERT INTO followers (follower_id, followee_id) VALUES %s", sorted(edges)
        )
        cur.execute(
            "UPDATE users u SET following_count = (SELECT count(*) FROM followers"
            " WHERE follower_id = u.id), follower_count = (SELECT count(*) FROM followers"
            " WHERE followee_id = u.id) WHERE u.id = ANY(%s)",
            (ids,),
        )
    conn.close()
    return edges


def create_shards(settings: Settings, authors: list[int], n: int, rng: random.Random) -> list[int]:
    """Insert ``n`` shards by random ``authors`` (and their shard counts) in one transaction."""
    picks = [rng.choice(authors) for _ in range(n)]
    with pg_connect(settings) as conn, conn.cursor() as cur:
        rows = psycopg2.extras.execute_values(
            cur,
            "INSERT INTO shards (author_id, body) VALUES %s RETURNING id",
            [(a, f"bench shard {i}") for i, a in enumerate(picks)],
            page_size=1000,
            fetch=True,
        )
        cur.execute(
            "UPDATE users u SET shard_count = (SELECT count(*) FROM shards"
            " WHERE author_id = u.id) WHERE u.id = ANY(%s)",
            (sorted(set(picks)),),
        )
    conn.close()
    return [r[0] for r in rows]


def write_followers(session: Any, author_id: int, follower_ids: list[int], lsn: int = 1) -> None:
    """Write one author's followers_by_user partition in single-partition UNLOGGED batches."""
    stmt = st.get(st.UPSERT_FOLLOWER)
    prepared = session.prepare(stmt.cql)
    batches = []
    for i in range(0, len(follower_ids), 100):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for f in follower_ids[i : i + 100]:
            batch.add(prepared, stmt.bind_values((author_id, f, None, lsn), lsn))
        batches.append(batch)
    _run_all(session, batches)


def _run_all(session: Any, statements: list[Any], concurrency: int = 32) -> None:
    from cassandra.concurrent import execute_concurrent

    for ok, res in execute_concurrent(session, [(s, None) for s in statements], concurrency):
        if not ok:
            raise res


def big_author(
    session: Any,
    author_id: int,
    followers: list[int],
    readers: list[int],
    *,
    pull: bool,
    followed_at: datetime,
    lsn: int = 1,
) -> None:
    """Seed a big author's audience in the read model, directly (not through CDC).

    ``followers`` (synthetic ids, plus ``readers``) go into the author's followers_by_user
    partition, which a push fan-out or a mode sweep pages through. ``readers`` are real
    users among them whose feeds a benchmark reads: each gets the follow edge the read
    merge checks (following_by_user, followed at ``followed_at``). With ``pull`` the
    author's decision is written settled (author_mode target 'pull' at ``lsn``) and each
    reader's pull list holds the author: the state a finished push -> pull sweep leaves
    (docs/events.md, "Push and pull authors"), without paying a sweep of every follower.
    Everything is written at timestamp ``lsn``, below any real event's LSN.
    """
    write_followers(session, author_id, followers, lsn)
    writes = [(st.UPSERT_FOLLOWING, (r, author_id, followed_at, lsn)) for r in readers]
    if pull:
        writes.append((st.DECIDE_AUTHOR_MODE, (author_id, "pull", lsn)))
        writes.append((st.SETTLE_AUTHOR_MODE, (author_id, lsn)))
        writes += [(st.INSERT_PULL_FOLLOWING, (r, author_id)) for r in readers]
    prepared = {name: session.prepare(st.get(name).cql) for name in {n for n, _ in writes}}
    bound = [prepared[n].bind(st.get(n).bind_values(p, lsn)) for n, p in writes]
    _run_all(session, bound, concurrency=64)


def set_follower_count(settings: Settings, author_id: int, count: int) -> None:
    """Make PostgreSQL's follower_count say ``count``, as if that many follows existed.

    Counts are kept by triggers (migration 0004) from real follow rows; a benchmark that
    seeds the audience in the read model sets the count to match, so the users change
    event it causes plans a mode check that agrees with the seeded mode (pull above
    FEEDLINE_PULL_THRESHOLD, push below it) instead of moving the author.
    """
    with pg_connect(settings) as conn, conn.cursor() as cur:
        cur.execute("UPDATE users SET follower_count = %s WHERE id = %s", (count, author_id))
    conn.close()
