"""Compute what the read model should hold from one consistent PostgreSQL snapshot.

Everything is read inside one ``REPEATABLE READ READ ONLY`` transaction, so a whole run
compares against one state of the database; users are streamed with a server-side cursor
(memory bounded by one user's data, not the database's).

The expected home feed of user U (``feed_by_user``), from PostgreSQL alone (the one
definition, docs/events.md "The expected feed", that fan-out, backfill and replays follow):

- every shard U wrote, and
- for each user A that U follows, the edge created at T (``followers.created_at``):
  every shard of A created at or after T - W, W being the backfill window
  (``FEEDLINE_BACKFILL_WINDOW_S``), both at Cassandra's millisecond precision.

Deleted shards are in no feed. ``feed_by_user_author`` must hold exactly the rows of the
second kind (the followed authors' shards), under (U, A).

Feeds are bounded (``FEEDLINE_FEED_MAX``, docs/events.md "Bounded feeds"): the expected
feed is the newest ``feed_max`` rows of the above, newest first by (created_at, shard_id),
and the index holds the followed authors' rows among them. ``Expected.beyond_cap`` keeps
the next ``feed_slack`` rows: a feed may still hold them until its next trim.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extras

from feedline.errors import FeedlineError
from feedline.settings import PostgresSettings
from feedline.verify.model import Partition, Row, ms

USER = "SELECT id, handle, follower_count, following_count, shard_count, created_at FROM users"
SHARDS = """
SELECT id AS shard_id, author_id, body, like_count, comment_count, created_at
FROM shards WHERE author_id = %s"""
FOLLOWERS = "SELECT follower_id, created_at FROM followers WHERE followee_id = %s"
FOLLOWING = "SELECT followee_id, created_at FROM followers WHERE follower_id = %s"
# date_trunc: the pipeline compares millisecond-truncated times (the decoder's and
# Cassandra's precision); a shard is in the window iff trunc(s) >= trunc(T) - W, which for an
# ms-aligned bound is the same as s >= trunc(T) - W (and can use shards_author_idx).
FOLLOWED_FEED = """
SELECT s.id AS shard_id, s.author_id, s.created_at
FROM followers f JOIN shards s ON s.author_id = f.followee_id
WHERE f.follower_id = %s
  AND s.created_at >= date_trunc('milliseconds', f.created_at) - %s * interval '1 millisecond'"""
COMMENTS = """
SELECT c.id AS comment_id, c.shard_id, c.author_id, c.body, c.created_at
FROM comments c JOIN shards s ON s.id = c.shard_id WHERE s.author_id = %s"""
LIKES = """
SELECT l.shard_id, l.user_id, l.created_at
FROM likes l JOIN shards s ON s.id = l.shard_id WHERE s.author_id = %s"""


class SnapshotUnavailable(FeedlineError):
    """No quiet moment to pin an LSN-consistent snapshot within the bound."""


@dataclass
class Expected:
    """Every read-model partition one user owns, with the rows it should hold.

    A user owns their profile, shard list, feed and both follow lists, and the
    partitions of each shard they wrote (the shard, its comments and likes).
    """

    user_id: int
    partitions: dict[Partition, list[Row]] = field(default_factory=dict)
    # The expected feed's rows just past the cap, newest first: not yet trimmed is fine.
    beyond_cap: list[Row] = field(default_factory=list)

    @property
    def shard_ids(self) -> set[int]:
        return {key for (table, key) in self.partitions if table == "shards_by_id"}


class Source:
    """One snapshot of PostgreSQL; ``lsn`` is set when opened with ``pin_lsn=True``."""

    def __init__(
        self,
        settings: PostgresSettings,
        backfill_window_s: int,
        pin_lsn: bool = False,
        *,
        feed_max: int = 0,
        feed_slack: int = 0,
    ):
        self._window_ms = backfill_window_s * 1000
        self._feed_max = feed_max  # 0: feeds are not bounded
        self._feed_slack = feed_slack
        self._dsn = settings.dsn()
        self._connect_timeout_s = settings.connect_timeout_s
        self._now: Any = None
        self._conn = psycopg2.connect(
            settings.dsn(),
            connect_timeout=settings.connect_timeout_s,
            application_name="feedline-verify",
            options="-c timezone=UTC -c statement_timeout=0",
        )
        self.lsn: int | None = None
        try:
            if pin_lsn:
                self.lsn = self._pin_snapshot()
            else:
                self._begin()
        except BaseException:
            self._conn.close()
            if self._now is not None:
                self._now.close()
            raise

    def _begin(self) -> None:
        self._conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with self._conn.cursor() as cur:
            cur.execute("SELECT 1")  # the snapshot is taken by the first statement

    def _pin_snapshot(self, bound_s: float = 30.0) -> int:
        """Open the snapshot at a WAL position L such that every change it does not see
        was written at an LSN >= L, and return L - 1 (see feedline/rebuild.py for why).

        L is read *before* the snapshot; a transaction still running when the snapshot
        was taken could have written below L without being visible, so retry until no
        transaction held an xid then. The snapshot's xip list alone cannot say so: it
        lists only running xids below its xmax, which is one past the newest *completed*
        xid, so the newest transaction (usually the only one running) is never in it.
        A probe xid taken after the snapshot closes the gap: if it equals xmax, no xid
        at or above xmax existed when the snapshot was taken.
        """
        deadline = time.monotonic() + bound_s
        probes = self._now_conn()  # connected first: nothing slow between snapshot and probe
        while True:
            self._conn.autocommit = True
            with self._conn.cursor() as cur:
                cur.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
                lsn = int(cur.fetchone()[0])
            self._conn.autocommit = False
            self._conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
            with self._conn.cursor() as cur:
                cur.execute(
                    "SELECT (SELECT count(*) FROM pg_snapshot_xip(s)),"
                    " pg_snapshot_xmax(s)::text::bigint FROM pg_current_snapshot() AS s"
                )
                running, xmax = cur.fetchone()
            # After the snapshot, outside it (its own short transaction; burns one xid).
            with probes.cursor() as cur:
                cur.execute("SELECT pg_current_xact_id()::text::bigint")
                probe = cur.fetchone()[0]
            if running == 0 and probe == xmax:
                return lsn - 1
            self._conn.rollback()
            if time.monotonic() > deadline:
                raise SnapshotUnavailable(
                    f"no moment without a running write transaction in {bound_s:.0f} s"
                    " (writes never paused: try again, or when the load is lower)"
                )
            # Jittered: two pins at once (each probe takes an xid) must not stay in step.
            time.sleep(random.uniform(0.005, 0.02))

    def _now_conn(self) -> Any:
        """Return the autocommit connection that reads outside the snapshot."""
        if self._now is None:
            self._now = psycopg2.connect(
                self._dsn, connect_timeout=self._connect_timeout_s,
                application_name="feedline-verify",
            )  # fmt: skip
            self._now.autocommit = True
        return self._now

    def close(self) -> None:
        with suppress(psycopg2.Error):
            self._conn.rollback()
        self._conn.close()
        if self._now is not None:
            self._now.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with self._conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [_normalise(r) for r in cur.fetchall()]

    def count_users(self) -> int:
        with self._conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM users")
            return int(cur.fetchone()[0])

    def user_ids(self, chunk: int = 500) -> Iterator[int]:
        """Stream every user id in id order through a server-side cursor."""
        with self._conn.cursor(name="feedline_verify_users") as cur:
            cur.itersize = chunk
            cur.execute("SELECT id FROM users ORDER BY id")
            for (user_id,) in cur:
                yield user_id

    def existing(self, table: str, ids: list[int]) -> set[int]:
        """Return which of ``ids`` exist in ``users`` or ``shards`` (in this snapshot)."""
        assert table in ("users", "shards")
        sql = f"SELECT id FROM {table} WHERE id = ANY(%s)"  # noqa: S608 (fixed identifier)
        with self._conn.cursor() as cur:
            cur.execute(sql, (ids,))
            return {r[0] for r in cur.fetchall()}

    def existing_now(self, table: str, ids: list[int]) -> set[int]:
        """Like ``existing`` but in the database's current state, outside the snapshot."""
        assert table in ("users", "shards")
        if not ids:
            return set()
        sql = f"SELECT id FROM {table} WHERE id = ANY(%s)"  # noqa: S608 (fixed identifier)
        with self._now_conn().cursor() as cur:
            cur.execute(sql, (ids,))
            return {r[0] for r in cur.fetchall()}

    def max_id(self, table: str) -> int:
        """Return the highest id of ``users`` or ``shards`` in this snapshot (0 if none)."""
        assert table in ("users", "shards")
        with self._conn.cursor() as cur:
            cur.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608
            return int(cur.fetchone()[0])

    def expected(self, user_id: int, edge_lsn: int | None = None) -> Expected:
        """Return every partition ``user_id`` owns and what it should hold.

        ``edge_lsn`` fills the follow lists' ``edge_lsn`` column (rebuild writes it; verify
        does not compare it: PostgreSQL does not know the LSN of an edge's last change).
        """
        out = Expected(user_id)
        parts = out.partitions
        users = self._rows(USER + " WHERE id = %s", user_id)
        if not users:
            return out  # gone since the id was listed; its partitions should be empty
        user = users[0]
        parts[("users_by_id", user_id)] = [{**user, "user_id": user_id}]
        shards = self._rows(SHARDS, user_id)
        parts[("shards_by_author", user_id)] = shards
        for s in shards:
            parts[("shards_by_id", s["shard_id"])] = [s]
            parts[("comments_by_shard", s["shard_id"])] = []
            parts[("likes_by_shard", s["shard_id"])] = []
        for c in self._rows(COMMENTS, user_id):
            parts[("comments_by_shard", c["shard_id"])].append(c)
        for like in self._rows(LIKES, user_id):
            parts[("likes_by_shard", like["shard_id"])].append(like)
        parts[("followers_by_user", user_id)] = [
            {**r, "user_id": user_id, "edge_lsn": edge_lsn} for r in self._rows(FOLLOWERS, user_id)
        ]
        parts[("following_by_user", user_id)] = [
            {**r, "user_id": user_id, "edge_lsn": edge_lsn} for r in self._rows(FOLLOWING, user_id)
        ]
        followed = self._rows(FOLLOWED_FEED, user_id, self._window_ms)
        feed = {s["shard_id"]: s for s in followed}
        feed.update({s["shard_id"]: s for s in shards})
        rows = sorted(feed.values(), key=lambda s: (s["created_at"], s["shard_id"]), reverse=True)
        if self._feed_max:
            cap, slack = self._feed_max, self._feed_slack
            out.beyond_cap = [{**s, "user_id": user_id} for s in rows[cap : cap + slack]]
            rows = rows[:cap]
        kept = {s["shard_id"] for s in rows}
        parts[("feed_by_user", user_id)] = [{**s, "user_id": user_id} for s in rows]
        parts[("feed_by_user_author", user_id)] = [
            {**s, "user_id": user_id} for s in followed if s["shard_id"] in kept
        ]
        return out


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """Give PostgreSQL rows Cassandra's column names and timestamp precision."""
    row = dict(row)
    if "id" in row:
        row["user_id"] = row.pop("id")
    if "created_at" in row:
        row["created_at"] = ms(row["created_at"])
    return row
