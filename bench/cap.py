"""Bounded feeds: after 10x FEEDLINE_FEED_MAX posts into one feed, its size and tombstones.

One reader follows two authors (follows inserted by plain SQL and carried by Debezium, so
the bench pipeline writes the follow rows itself; at one follower each the authors stay
push). The authors then post ``cap_posts_x`` x the bench pipeline's cap (the product
default, 800: 8,000 posts; ``--quick`` posts 2x, 1,600) by plain SQL, 100 shards per
transaction (``seed.create_shards``), carried by Debezium and the bench pipeline like any
write: every post lands in the reader's feed, and the pipeline trims it as it goes. Once the
pipeline is caught up and the last shard is the reader's newest feed row:

- size: the rows of the reader's ``feed_by_user`` partition and of its index partition
  (``feed_by_user_author``), beside the cap; and the most rows its feed held while the
  posts were carried (counted every 0.25 s in a thread), the size between trims. Goal
  (issue 16): at most 1.1x the cap after the posts; the peak has none (the issue's bound
  is on the feed after them), though docs/events.md says ~1.1x holds throughout.
- tombstones read, from Cassandra's tracing ("Read N live rows and M tombstone cells"):
  the web's first read of a feed (``queries.head(FEED)`` for its cached window, 101 rows)
  and a read of the whole partition (what paging past the cap reads). Goal: none for the
  first read.
- tombstone warnings Cassandra logged (var/log/cassandra.log) during the benchmark on the
  bench keyspace's feed tables, the pipeline's own trim reads included. Goal: none.

Baseline, same run: a trim that deleted row by row. Another feed partition (a synthetic
user, written straight into the bench keyspace by the driver) gets as many rows as the
reader was sent, and the rows the product's trim cut from the reader's feed are deleted
from it one by one: that is what a per-row trim leaves (one tombstone per trimmed row until
compaction purges them after gc_grace_seconds), read with the same traced reads, its log
warnings counted the same way. The cap itself is the size figures' baseline. A first page
reads no tombstone in either (they lie below the cap): its baseline is the whole read of
the reader's own feed, the tombstones that are there to meet. At ``--quick`` size the
per-row baseline holds about 800 tombstones, under the warn threshold (1,000): it warns
only at full size, where it is also the log scan's positive control.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2.extras
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType

from bench import seed
from bench.context import Ctx
from bench.env import KEYSPACE, PIPELINE_PORT, wait_caught_up
from bench.figures import Figure
from bench.tombstones import LogWatch, TracedRead, feed_head, feed_whole
from feedline import cassandra
from feedline import statements as st
from feedline.readmodel import queries
from feedline.readmodel.formats import FEED
from feedline.stack.layout import Layout

AUTHORS = 2
PER_TRANSACTION = 100
BASELINE_USER = 700_000_000_001  # the per-row-delete feed, written directly
FEED_TABLES = ("feed_by_user", "feed_by_user_author")
POLL_S = 0.5
PEAK_EVERY_S = 0.25


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    env, settings = ctx.env, ctx.env.settings
    cap = settings.pipeline.feed_max
    posts = ctx.sizes.cap_posts_x * cap
    window = settings.reads.window + 1  # the web loads its 100-row window plus one
    log = LogWatch(Layout.of(settings.stack).log("cassandra"))
    users = seed.create_users(settings, f"b{env.run_id}c", 1 + AUTHORS)
    reader, authors = users[0].id, [u.id for u in users[1:]]
    cluster, session = cassandra.connect(settings.cassandra)
    try:
        wait_caught_up(PIPELINE_PORT)  # what earlier benchmarks left
        _follow(settings, reader, authors)
        _wait(lambda: _followed(session, reader, authors), 120, "the follows")
        t0 = time.monotonic()
        peak = Peak(session, reader)
        with ctx.sampler.phase("cap posts", {"pipeline": ctx.pipeline}), peak:
            last = max(
                sid
                for _ in range(0, posts, PER_TRANSACTION)
                for sid in seed.create_shards(settings, authors, PER_TRANSACTION, ctx.rng)
            )
            _wait(lambda: _newest(session, reader) == last, 120 + posts / 20, "the last shard")
            wait_caught_up(PIPELINE_PORT)
        carried_s = time.monotonic() - t0
        held = _count(session, "feed_by_user", reader)
        indexed = _count(session, "feed_by_user_author", reader)
        page, whole = feed_head(session, reader, window), feed_whole(session, reader)
        trimmed = posts - held
        _per_row_trimmed(session, posts, trimmed)
        base_page, base_whole = (
            feed_head(session, BASELINE_USER, window),
            feed_whole(session, BASELINE_USER),
        )
    finally:
        cluster.shutdown()
    time.sleep(1.0)  # the log line follows the read
    warned = [w for w in log.lines() if w[0] == KEYSPACE and w[1] in FEED_TABLES]
    ours = [w for w in warned if w[2] != BASELINE_USER]
    base_warned = [w for w in warned if w[2] == BASELINE_USER]
    figures = _figures(cap, posts, window, held, indexed, page, whole, base_page, base_whole)
    figures.insert(
        1,
        Figure(
            "cap.feed_by_user_peak_rows",
            f"most feed_by_user rows seen while the {posts:,} posts were carried",
            peak.rows,
            "rows",
            cap,
            "FEEDLINE_FEED_MAX",
            note=f"docs/events.md: at most ~1.1x; {peak.samples} counts, every {PEAK_EVERY_S}s",
        ),
    )
    figures.append(
        Figure(
            "cap.tombstone_warnings",
            "tombstone warnings Cassandra logged on the bench feeds during the benchmark",
            len(ours),
            "",
            len(base_warned),
            f"the per-row-delete feed's two reads ({base_whole.tombstones:,} tombstones)",
            "0",
            len(ours) == 0,
        )
    )
    details = {
        "cap": cap,
        "posts": posts,
        "authors": AUTHORS,
        "posts_carried_s": round(carried_s, 1),
        "feed_rows": held,
        "feed_rows_peak": peak.rows,
        "peak_samples": peak.samples,
        "index_rows": indexed,
        "trimmed_rows": trimmed,
        "reads": {
            "first_window": page._asdict(),
            "whole": whole._asdict(),
            "per_row_first_window": base_page._asdict(),
            "per_row_whole": base_whole._asdict(),
        },
        "warnings": [w[3][:300] for w in warned[:20]],
        "other_tombstone_log_lines": len(log.lines()) - len(warned),
    }
    return figures, details


def _figures(
    cap: int,
    posts: int,
    window: int,
    held: int,
    indexed: int,
    page: TracedRead,
    whole: TracedRead,
    base_page: TracedRead,
    base_whole: TracedRead,
) -> list[Figure]:
    size = [
        Figure(
            f"cap.{table}_rows",
            f"{table} rows of a reader sent {posts:,} posts",
            rows,
            "rows",
            cap,
            "FEEDLINE_FEED_MAX",
            "≤ 1.1x",
            rows <= 1.1 * cap,
        )
        for table, rows in (("feed_by_user", held), ("feed_by_user_author", indexed))
    ]
    reads = [
        Figure(
            "cap.first_window_tombstones",
            f"tombstones read by the feed's first read ({window} rows, {page.live} live read)",
            page.tombstones,
            "",
            whole.tombstones,
            "the same feed read whole",
            "0",
            page.tombstones == 0 and not page.warnings and page.rows == min(window, held),
        ),
        Figure(
            "cap.whole_tombstones",
            f"tombstones read by a read of the whole feed ({whole.live} live)",
            whole.tombstones,
            "",
            base_whole.tombstones,
            f"trimmed row by row ({base_whole.live} live)",
            note=f"per-row first window: {base_page.tombstones}",
        ),
    ]
    return size + reads


class Peak:
    """Count a feed's rows every PEAK_EVERY_S in a thread while the block runs; keep the
    most seen (the size between trims, not only after the last one)."""

    def __init__(self, session: Any, user: int):
        self.session, self.user = session, user
        self.rows, self.samples = 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Peak:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _watch(self) -> None:
        while not self.stop.wait(PEAK_EVERY_S):
            self.rows = max(self.rows, _count(self.session, "feed_by_user", self.user))
            self.samples += 1


def _follow(settings: Any, reader: int, authors: list[int]) -> None:
    """Insert the reader's follows by plain SQL (the counts follow by trigger)."""
    with seed.pg_connect(settings) as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO followers (follower_id, followee_id) VALUES %s",
            [(reader, a) for a in authors],
        )
    conn.close()


def _followed(session: Any, reader: int, authors: list[int]) -> bool:
    cql = queries.partition("following_by_user").replace("?", "%s")
    return {r.followee_id for r in session.execute(cql, (reader,))} >= set(authors)


def _newest(session: Any, reader: int) -> int | None:
    row = session.execute(queries.head(FEED).replace("?", "%s"), (reader, 1)).one()
    return row.shard_id if row else None


def _count(session: Any, table: str, user: int) -> int:
    cql = queries.partition(table).replace("?", "%s")
    return len(list(session.execute(cql, (user,))))


def _wait(done: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not seen in {timeout:.0f}s")
        time.sleep(POLL_S)


def _per_row_trimmed(session: Any, posts: int, trimmed: int) -> None:
    """Write ``posts`` rows into BASELINE_USER's feed, then delete the oldest ``trimmed``
    of them one row at a time (single-partition UNLOGGED batches of 50)."""
    insert, delete = st.get(st.INSERT_FEED_ITEM), st.get(st.DELETE_FEED_ITEM)
    ins, dele = session.prepare(insert.cql), session.prepare(delete.cql)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    keys = [(BASELINE_USER, start + timedelta(milliseconds=i), i) for i in range(posts)]
    rows = [ins.bind(insert.bind_values((*k, 0), 1)) for k in keys]
    deletes = [dele.bind(delete.bind_values(k, 2)) for k in keys[:trimmed]]
    for bound in (rows, deletes):
        batches = []
        for i in range(0, len(bound), 50):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for b in bound[i : i + 50]:
                batch.add(b)
            batches.append((batch, None))
        for ok, res in execute_concurrent(session, batches, concurrency=16):
            if not ok:
                raise res
