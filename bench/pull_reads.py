"""Measure a feed page's read cost with pull authors merged in (issue 16, cost model).

    .venv/bin/python -m bench.pull_reads            # near cache on (the default)
    NO_NEAR=1 .venv/bin/python -m bench.pull_reads  # every page from Redis windows

Two readers of the same 150 shards (5 authors x 30): one holds them in its feed partition
(push), the other follows the 5 authors as pull authors (pull list, edges, the authors'
shard lists), so both pages show the same 20 items (checked). Each page is rendered in
process (``http.pages.shard_page`` on a ``ReadModel`` built as the web builds it, with
``FEEDLINE_PULL_THRESHOLD`` > 0, against the real Redis and Cassandra), 300 times after 50
of warm-up: with every cache warm, with the reader's feed window dropped before each read,
and with the authors' windows dropped too. Prints p50 and p99 per case. The rows go into
the configured keyspace under ids above 9.1e9 at write timestamp 1 and are deleted (at
timestamp 2) at the end, with their Redis keys.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from feedline import cache_keys
from feedline.db import Database
from feedline.http import pages
from feedline.http.app import read_model
from feedline.migrate import connect
from feedline.readmodel.formats import FEED
from feedline.settings import load

AUTHORS, SHARDS, RUNS = 5, 30, 300
INSERTS = {
    "user": "INSERT INTO users_by_id (user_id, handle, shard_count) VALUES (%s, %s, 30) "
    "USING TIMESTAMP 1",
    "listed": "INSERT INTO shards_by_author (author_id, created_at, shard_id) "
    "VALUES (%s, %s, %s) USING TIMESTAMP 1",
    "shard": "INSERT INTO shards_by_id (shard_id, author_id, body, created_at) "
    "VALUES (%s, %s, 'x', %s) USING TIMESTAMP 1",
    "feed": "INSERT INTO feed_by_user (user_id, created_at, shard_id, author_id) "
    "VALUES (%s, %s, %s, %s) USING TIMESTAMP 1",
    "edge": "INSERT INTO following_by_user (user_id, followee_id, created_at, edge_lsn) "
    "VALUES (%s, %s, %s, 1) USING TIMESTAMP 1",
    "pull": "INSERT INTO pull_following_by_user (user_id, author_id) VALUES (%s, %s) "
    "USING TIMESTAMP 1",
}
DELETES = (
    ("users_by_id", "user_id"),
    ("shards_by_author", "author_id"),
    ("shards_by_id", "shard_id"),
    ("feed_by_user", "user_id"),
    ("following_by_user", "user_id"),
    ("pull_following_by_user", "user_id"),
)


def main() -> None:
    settings = load()
    pipeline = dataclasses.replace(settings.pipeline, pull_threshold=1000)
    reads_settings = settings.reads
    if os.environ.get("NO_NEAR"):
        reads_settings = dataclasses.replace(reads_settings, near_cache_size=0, near_cache_pages=0)
    settings = dataclasses.replace(settings, pipeline=pipeline, reads=reads_settings)
    cluster, cs = connect(settings.cassandra)
    cs.set_keyspace(settings.cassandra.keyspace)
    base = 9_100_000_000 + random.randrange(10**6) * 1000
    push, pull = base + 1, base + 2
    authors = [base + 10 + i for i in range(AUTHORS)]
    now = datetime.now(UTC).replace(tzinfo=None)
    shards = []
    for i, a in enumerate(authors):
        cs.execute(INSERTS["user"], (a, f"pb{a}"))
        cs.execute(INSERTS["edge"], (pull, a, now - timedelta(days=1)))
        cs.execute(INSERTS["pull"], (pull, a))
        for j in range(SHARDS):
            sid, t = base + 100 + i * SHARDS + j, now - timedelta(seconds=j * 7 + i)
            shards.append(sid)
            cs.execute(INSERTS["listed"], (a, t, sid))
            cs.execute(INSERTS["shard"], (sid, a, t))
            cs.execute(INSERTS["feed"], (push, t, sid, a))
    cache = redis.Redis.from_url(settings.redis.url)
    windows = [cache_keys.user_shards(a) for a in authors]
    reads = read_model(settings, Database(settings.postgres))
    try:
        measure(reads, cache, push, pull, windows)
    finally:
        cache.delete(cache_keys.feed(push), cache_keys.feed(pull), *windows)
        keys = {"user_id": [push, pull, *authors], "author_id": authors, "shard_id": shards}
        for table, column in DELETES:
            for key in keys[column]:
                cs.execute(f"DELETE FROM {table} USING TIMESTAMP 2 WHERE {column} = %s", (key,))  # noqa: S608
        cluster.shutdown()


def measure(reads: Any, cache: Any, push: int, pull: int, windows: list[str]) -> None:
    def page(owner: int) -> bytes:
        return pages.shard_page(reads, FEED, owner, None, 20)

    items = json.loads(page(push))["items"]
    assert len(items) == 20 and items == json.loads(page(pull))["items"], "not the same page"

    def timed(owner: int, drop: list[str]) -> tuple[float, float]:
        out = []
        for i in range(50 + RUNS):
            if drop:
                cache.delete(*drop)
            t0 = time.perf_counter()
            page(owner)
            if i >= 50:
                out.append(time.perf_counter() - t0)
        out.sort()
        return statistics.median(out) * 1000, out[int(len(out) * 0.99)] * 1000

    for case, also in (("warm", None), ("feed window miss", []), ("all windows miss", windows)):
        for name, owner in (("push", push), (f"{AUTHORS} pull authors", pull)):
            drop = [] if also is None else [cache_keys.feed(owner), *also]
            p50, p99 = timed(owner, drop)
            print(f"{case:17} {name:15} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms")


if __name__ == "__main__":
    main()
