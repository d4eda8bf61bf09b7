"""Ordinary freshness while a 20,000-follower fan-out runs, one step vs in steps (issue 16).

    .venv/bin/python -m bench.head_of_line [--followers 20000] [--quiet-s 10]

Ten ordinary authors post 20 shards a second in all (plain SQL inserts, carried by
Debezium, as the issue's measurement did) and each has one reader following it; the
freshness of a post is its commit -> the row in its reader's feed (polled every 20 ms).
After ``--quiet-s`` seconds of that, an author with ``--followers`` followers (written
straight into ``followers_by_user``, as bench/fanout.py seeds them) posts once, and the
ordinary load goes on until that post is in its last follower's feed. The whole thing runs
twice, each time with a fresh pipeline process of its own (own consumer group from the log
end, own keyspace): ``FEEDLINE_EXPANSION_CHUNK`` above the follower count (the whole
fan-out in one step, as before issue 16) and the default (steps of 500). Everything is on
loopback, and bounded in time (a fan-out that takes over ``FANOUT_TIMEOUT_S`` is reported
as such). Prints one line per run and phase: p50, p99 and max freshness, and the fan-out's
duration.
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
from bench.env import BenchEnv, wait_ready
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


def summary(label: str, xs: list[float]) -> str:
    if not xs:
        return f"{label}: no posts"
    lost = sum(1 for x in xs if x == float("inf"))
    done = sorted(x for x in xs if x != float("inf"))
    return (
        f"{label}: n={len(xs)} p50={percentile(done, 50):.2f}s p99={percentile(done, 99):.2f}s"
        f" max={max(done):.2f}s" + (f" unseen={lost}" if lost else "")
    )


def one_run(env: BenchEnv, name: str, chunk: int, users: dict, quiet_s: float) -> list[str]:
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
        big_at = time.monotonic()
        created, sid = _post_big(env, users["big"])
        took = _wait_fanned_out(session, users["followers"], created, sid)
        end = time.monotonic()
        time.sleep(2)
        load.finish(threads)
        lines = [
            summary(f"{name} (chunk {chunk}) quiet", load.between(0, big_at)),
            summary(f"{name} (chunk {chunk}) during the fan-out", load.between(big_at, end)),
            f"{name} (chunk {chunk}) fan-out to {len(users['followers']):,}: "
            + (f"{took:.1f}s" if took is not None else f"not done in {FANOUT_TIMEOUT_S:.0f}s"),
        ]
    finally:
        cluster.shutdown()
        proc.stop()
    return lines


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
    parser.add_argument("--followers", type=int, default=20_000)
    parser.add_argument("--quiet-s", type=float, default=10.0)
    parser.add_argument(
        "--chunks", type=int, nargs="*", help="steps to compare (default: one step, then 500)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    env = BenchEnv(quick=True)
    migrate_cassandra(dataclasses.replace(env.settings.cassandra, keyspace=KEYSPACE))
    cluster, session = cassandra.connect(
        dataclasses.replace(env.settings.cassandra, keyspace=KEYSPACE)
    )
    lines = []
    try:
        made = seed.create_users(env.settings, f"b{env.run_id}h", 1 + 2 * AUTHORS)
        big, authors, readers = made[0].id, made[1 : 1 + AUTHORS], made[1 + AUTHORS :]
        for a, r in zip(authors, readers, strict=True):
            seed.write_followers(session, a.id, [r.id])
        followers = [FOLLOWER_BASE + i for i in range(args.followers)]
        seed.write_followers(session, big, followers)
        users = {
            "big": big,
            "authors": [a.id for a in authors],
            "readers": [r.id for r in readers],
            "followers": followers,
        }
        modes = [(f"steps of {c}", c) for c in args.chunks] if args.chunks else MODES
        for name, chunk in modes:
            lines += one_run(env, name, max(chunk, 1), users, args.quiet_s)
            for line in lines[-3:]:
                logger.info("%s", line)
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=120)
        cluster.shutdown()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
