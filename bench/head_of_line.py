"""Ordinary freshness while a 20,000-follower fan-out runs, in steps vs one step (issue 16).

A benchmark section (``bench.run --only head_of_line``) and a script of its own:

    .venv/bin/python -m bench.head_of_line [--followers 20000] [--quiet-s 10]

Ten ordinary authors post 20 shards a second in all (plain SQL inserts, carried by
Debezium, as the issue's measurement did) and each has one reader following it; the
freshness of a post is its commit -> the row in its reader's feed (polled every 20 ms).
After ``quiet_s`` seconds of that, an author with ``followers`` followers (written straight
into ``followers_by_user``, as bench/fanout.py seeds them) posts once, and the ordinary load
goes on until that post is in its last follower's feed. The whole thing runs twice, each
time with a fresh pipeline process of its own (own consumer group from the log end, own
keyspace ``feedline_bench_hol``, dropped at the end): first with ``FEEDLINE_EXPANSION_CHUNK``
above the follower count (the whole fan-out in one step, as before issue 16: the
baseline), then with the product default (steps of 500). Everything is on loopback, and
bounded in time (a fan-out that takes over ``FANOUT_TIMEOUT_S`` is reported as such).

The big author is a push author, and the benchmark checks it: its PostgreSQL
follower_count stays 0 (its followers exist only in the read model), so no users event
plans a mode check that would make it pull at the default FEEDLINE_PULL_THRESHOLD (500),
and the fan-out must write a feed row per follower (the pipeline's
``feedline_rows_written_total{table="feed_by_user"}`` grows by at least the follower
count, or the run fails). At the default threshold a real 20,000-follower author would be
pull; this one stands for any big expansion the issue names (a backfill, deleting a widely
fanned shard, a push author under a raised threshold).

Under ``bench.run`` the bench pipeline (``ctx.pipeline``) consumes the same CDC topics: it
would take every ordinary post (and its users event) a second time, on the same two cores,
during the measurement. So it is stopped, once caught up, for the duration and started
again after; it then absorbs these posts (its keyspace has none of the followers: only the
authors' own rows) before the next benchmark, which waits for it to catch up.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import threading
import time
from typing import Any

from cassandra.concurrent import execute_concurrent

from bench import seed
from bench.context import Ctx, Sizes
from bench.env import PIPELINE_PORT, BenchEnv, pipeline_metrics, wait_caught_up, wait_ready
from bench.figures import Figure
from bench.stats import percentile
from feedline import cassandra
from feedline.migrate import migrate_cassandra
from feedline.settings import PipelineSettings

KEYSPACE = "feedline_bench_hol"
PORT = 18031
AUTHORS = 10
RATE = 20.0  # ordinary posts per second, in all
FOLLOWER_BASE = 800_000_000_000
FANOUT_TIMEOUT_S = 120.0
POLL_S = 0.02
MODES = (("one step", 10_000_000), ("in steps", PipelineSettings.expansion_chunk))
FEED_ROWS = 'feedline_rows_written_total{table="feed_by_user"}'
logger = logging.getLogger("bench.head_of_line")


@dataclasses.dataclass
class Post:
    shard_id: int
    created_at: Any
    reader: int
    committed: float
    seen: float | None = None


class Load:
    """Ordinary posts at RATE (open loop) and a prober timing each into its reader's feed."""

    def __init__(self, env: BenchEnv, session: Any, authors: list[int], readers: list[int]):
        self.env, self.session = env, session
        self.authors, self.readers = authors, readers
        self.check = session.prepare(
            "SELECT shard_id FROM feed_by_user WHERE user_id = ? AND created_at = ?"
            " AND shard_id = ?"
        )
        self.posts: list[Post] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=f, daemon=True) for f in (self._post, self._probe)]
        for t in threads:
            t.start()
        return threads

    def _post(self) -> None:
        conn = seed.pg_connect(self.env.settings)
        conn.autocommit = True
        start, i = time.monotonic(), 0
        with conn.cursor() as cur:
            while not self.stop.is_set():
                due = start + i / RATE
                time.sleep(max(0.0, due - time.monotonic()))
                k = i % len(self.authors)
                cur.execute(
                    "INSERT INTO shards (author_id, body) VALUES (%s, 'ordinary')"
                    " RETURNING id, date_trunc('milliseconds', created_at)",
                    (self.authors[k],),
                )
                sid, created = cur.fetchone()
                with self.lock:
                    self.posts.append(Post(sid, created, self.readers[k], time.monotonic()))
                i += 1
        conn.close()

    def _probe(self) -> None:
        while not self.stop.is_set() or self.pending():
            waiting = self.pending()
            args = [(self.check, (p.reader, p.created_at, p.shard_id)) for p in waiting]
            results = execute_concurrent(self.session, args, concurrency=32)
            now = time.monotonic()
            for p, (ok, rows) in zip(waiting, results, strict=True):
                if ok and rows.one() is not None:
                    p.seen = now
            time.sleep(POLL_S)
            if self.stop.is_set() and time.monotonic() > self.stopped_at + 30:
                return

    def pending(self) -> list[Post]:
        with self.lock:
            return [p for p in self.posts if p.seen is None]

    def between(self, t0: float, t1: float) -> list[float]:
        with self.lock:
            return [
                (p.seen or float("inf")) - p.committed for p in self.posts if t0 <= p.committed < t1
            ]

    def finish(self, threads: list[threading.Thread]) -> None:
        self.stopped_at = time.monotonic()
        self.stop.set()
        for t in threads:
            t.join(timeout=40)


@dataclasses.dataclass
class Measured:
    """One pipeline's run: ordinary freshness before and during the big fan-out."""

    name: str
    chunk: int
    quiet: list[float]  # seconds, commit -> in the reader's feed (inf: never seen)
    during: list[float]
    fanout_s: float | None  # the big post's commit -> in its last follower's feed
    feed_rows: float  # feed_by_user rows the pipeline wrote from the big post on

    def line(self, phase: str) -> str:
        label = f"{self.name} (chunk {self.chunk})"
        if phase == "fan-out":
            took = self.fanout_s
            text = f"{took:.1f}s" if took is not None else f"not done in {FANOUT_TIMEOUT_S:.0f}s"
            return f"{label} fan-out: {text}"
        xs = self.quiet if phase == "quiet" else self.during
        if not xs:
            return f"{label} {phase}: no posts"
        s = stats(xs)
        return (
            f"{label} {phase}: n={len(xs)} p50={s['p50']:.2f}s p99={s['p99']:.2f}s"
            f" max={s['max']:.2f}s" + (f" unseen={s['unseen']}" if s["unseen"] else "")
        )


def stats(xs: list[float]) -> dict[str, Any]:
    """p50/p99/max of freshness samples; a post never seen counts as infinitely late, and a
    percentile that lands on one is None (not measured), never a number."""
    seen = [x for x in xs if x != float("inf")]

    def pct(q: float) -> float | None:
        v = percentile(xs, q)
        return None if v is None or v == float("inf") else v

    return {
        "n": len(xs),
        "p50": pct(50),
        "p99": pct(99),
        "max": max(seen) if seen else None,
        "unseen": len(xs) - len(seen),
    }


def one_run(env: BenchEnv, name: str, chunk: int, users: dict, quiet_s: float) -> Measured:
    group = f"feedline-bench-hol-{env.run_id}-{chunk}"
    settings = dataclasses.replace(
        env.settings, kafka=dataclasses.replace(env.settings.kafka, group_id=group)
    )
    env.start_group_at_end(settings)
    proc = env.pipeline(
        f"pipeline-hol-{chunk}",
        PORT,
        FEEDLINE_KAFKA_GROUP=group,
        FEEDLINE_CASSANDRA_KEYSPACE=KEYSPACE,
        FEEDLINE_EXPANSION_CHUNK=str(chunk),
    ).start()
    cluster, session = cassandra.connect(dataclasses.replace(settings.cassandra, keyspace=KEYSPACE))
    try:
        wait_ready(PORT, settings.kafka.partitions * 5)
        load = Load(env, session, users["authors"], users["readers"])
        threads = load.run()
        time.sleep(quiet_s)
        rows_before = pipeline_metrics(PORT).get(FEED_ROWS, 0.0)
        big_at = time.monotonic()
        created, sid = _post_big(env, users["big"])
        took = _wait_fanned_out(session, users["followers"], created, sid)
        end = time.monotonic()
        rows = pipeline_metrics(PORT).get(FEED_ROWS, 0.0) - rows_before
        time.sleep(2)
        load.finish(threads)
        done = Measured(name, chunk, load.between(0, big_at), load.between(big_at, end), took, rows)
    finally:
        cluster.shutdown()
        proc.stop()
    if took is not None and rows < len(users["followers"]):
        raise RuntimeError(
            f"{name}: the big post wrote {rows:.0f} feed rows for"
            f" {len(users['followers']):,} followers: its author is not push"
        )
    return done


def measure(
    env: BenchEnv, followers: int, quiet_s: float, modes: tuple[tuple[str, int], ...] = MODES
) -> list[Measured]:
    """Seed the authors, readers and the big audience, run each mode; drop the keyspace."""
    migrate_cassandra(dataclasses.replace(env.settings.cassandra, keyspace=KEYSPACE))
    cluster, session = cassandra.connect(
        dataclasses.replace(env.settings.cassandra, keyspace=KEYSPACE)
    )
    runs = []
    try:
        made = seed.create_users(env.settings, f"b{env.run_id}h", 1 + 2 * AUTHORS)
        big, authors, readers = made[0].id, made[1 : 1 + AUTHORS], made[1 + AUTHORS :]
        for a, r in zip(authors, readers, strict=True):
            seed.write_followers(session, a.id, [r.id])
        audience = [FOLLOWER_BASE + i for i in range(followers)]
        seed.write_followers(session, big, audience)
        users = {
            "big": big,
            "authors": [a.id for a in authors],
            "readers": [r.id for r in readers],
            "followers": audience,
        }
        for name, chunk in modes:
            runs.append(one_run(env, name, max(chunk, 1), users, quiet_s))
            for phase in ("quiet", "during the fan-out", "fan-out"):
                logger.info("%s", runs[-1].line(phase))
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=120)
        cluster.shutdown()
    return runs


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    """The bench.run section: one step (baseline), then in steps, with the bench pipeline
    stopped meanwhile (see the module docstring)."""
    env, z = ctx.env, ctx.sizes
    wait_caught_up(PIPELINE_PORT)
    ctx.pipeline.stop()
    try:
        one, steps = measure(env, z.hol_followers, z.hol_quiet_s)
    finally:
        ctx.pipeline.start()
        wait_ready(PIPELINE_PORT, 5 * env.settings.kafka.partitions)
    n = f"{z.hol_followers:,}"
    s_one, s_steps = (
        {k: stats(getattr(one, k)) for k in ("quiet", "during")},
        {k: stats(getattr(steps, k)) for k in ("quiet", "during")},
    )
    base = f"one step ({one.chunk:,})"
    figures = [
        Figure(
            "head_of_line.during_p99",
            f"ordinary p99 during a {n}-follower fan-out, in steps of {steps.chunk}",
            s_steps["during"]["p99"],
            "s",
            s_one["during"]["p99"],
            f"the same, {base}",
        ),
        Figure(
            "head_of_line.during_vs_quiet",
            f"ordinary p99 during the fan-out, in steps of {steps.chunk}",
            s_steps["during"]["p99"],
            "s",
            s_steps["quiet"]["p99"],
            "quiet p99 before it, same pipeline",
        ),
        Figure(
            "head_of_line.quiet_p99",
            f"ordinary p99 before the fan-out ({RATE:.0f} posts/s), in steps",
            s_steps["quiet"]["p99"],
            "s",
            s_one["quiet"]["p99"],
            f"the same, {base}",
        ),
        Figure(
            "head_of_line.fanout_s",
            f"the big post's commit -> in all {n} followers' feeds, in steps",
            steps.fanout_s,
            "s",
            one.fanout_s,
            f"the same, {base}",
        ),
    ]
    details = {
        r.name: {
            "chunk": r.chunk,
            "quiet": stats(r.quiet),
            "during": stats(r.during),
            "fanout_s": r.fanout_s,
            "feed_rows_written": r.feed_rows,
        }
        for r in (one, steps)
    }
    details.update(followers=z.hol_followers, quiet_s=z.hol_quiet_s, rate=RATE)
    return figures, details


def _post_big(env: BenchEnv, author: int) -> tuple[Any, int]:
    with seed.pg_connect(env.settings) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO shards (author_id, body) VALUES (%s, 'big')"
            " RETURNING id, date_trunc('milliseconds', created_at)",
            (author,),
        )
        sid, created = cur.fetchone()
    conn.close()
    return created, sid


def _wait_fanned_out(session: Any, followers: list[int], created: Any, sid: int) -> float | None:
    check = session.prepare(
        "SELECT shard_id FROM feed_by_user WHERE user_id = ? AND created_at = ? AND shard_id = ?"
    )
    start = time.monotonic()
    sample = followers[-1:] + followers[:: max(1, len(followers) // 100)]
    while time.monotonic() - start < FANOUT_TIMEOUT_S:
        results = execute_concurrent(session, [(check, (f, created, sid)) for f in sample])
        if all(ok and rows.one() is not None for ok, rows in results):
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", type=int, default=Sizes.hol_followers)
    parser.add_argument("--quiet-s", type=float, default=Sizes.hol_quiet_s)
    parser.add_argument(
        "--chunks", type=int, nargs="*", help="steps to compare (default: one step, then 500)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    modes = tuple((f"steps of {c}", c) for c in args.chunks) if args.chunks else MODES
    runs = measure(BenchEnv(quick=True), args.followers, args.quiet_s, modes)
    phases = ("quiet", "during the fan-out", "fan-out")
    print("\n".join(r.line(phase) for r in runs for phase in phases))


if __name__ == "__main__":
    main()
