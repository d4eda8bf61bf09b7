"""Feed reads: ``GET /v1/feed`` from cache (hit) and from Cassandra (miss), and hit ratio.

Seeding: real users (PostgreSQL, so tokens work and users_by_id fills through CDC); their
feeds (20 items each) and a pool of shards are written straight into the bench keyspace:
building 10,000 feeds through fan-out would only measure fan-out again. Runs, all wrk:
the constant endpoint (baseline); "hot", a few users over and over (feed window and
objects cached); "cold", each user once after FLUSHDB of the bench Redis db (the feed
window always misses; shared shards' objects warm up as the run goes); "zipf", users drawn
with P(rank r) ~ 1/r over all users, after a warm-up of the same length, hit ratio from
the web's own feedline_read_cache counters. Peak req/s use ``wrk_connections``; the miss
latency figure is also taken at 3 connections (one per worker: service time, no queue).
"""

from __future__ import annotations

import time
import urllib.request
from datetime import UTC, datetime, timedelta

import redis
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType

from bench import seed, wrk
from bench.context import Ctx
from bench.env import CONST_PORT, PIPELINE_PORT, WEB_PORT, wait_caught_up
from bench.figures import Figure, skipped
from bench.stats import median
from feedline import cassandra
from feedline import statements as st
from feedline.http.routes import ROUTES

SHARD_BASE = 700_000_000_000
ITEMS = 20


def available() -> bool:
    return any(template == "/v1/feed" for template, _ in ROUTES)


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    if not available():
        why = "GET /v1/feed is not in feedline/http/routes.py yet"
        return [
            skipped("reads.hit.rps", "feed cache-hit req/s", "req/s", why, "≥ 0.6x ceiling"),
            skipped("reads.miss.p99", "feed cache-miss p99", "ms", why, "< 20 ms"),
            skipped("reads.zipf.hit_ratio", "hit ratio, Zipf", "", why, "≥ 0.95"),
        ], {}
    env, z = ctx.env, ctx.sizes
    users = seed.create_users(env.settings, f"b{env.run_id}d", z.read_users)
    _seed_feeds(env.settings, [u.id for u in users], ctx)
    wait_caught_up(PIPELINE_PORT)
    tokens = env.work / "read-tokens.txt"
    tokens.write_text("\n".join(u.token for u in users) + "\n")
    cache = redis.Redis.from_url(env.settings.redis.url)
    d, c = z.wrk_seconds, z.wrk_connections
    runs: dict[str, list] = {"const": [], "hot": [], "cold": [], "cold3": []}
    offset = 1
    for _ in range(z.repeats):
        runs["const"].append(wrk.run(env.work, "const", CONST_PORT, d, c))
        wrk.run(env.work, "feed", WEB_PORT, 1, 2, [str(tokens), "hot"])  # fill the hot users
        runs["hot"].append(wrk.run(env.work, "feed", WEB_PORT, d, c, [str(tokens), "hot"]))
        for name, conns in (("cold", c), ("cold3", 3)):
            cache.flushdb()
            before = _lookups()
            run = wrk.run(env.work, "feed", WEB_PORT, d, conns, [str(tokens), "cold", str(offset)])
            offset += run.requests + 2 * conns
            runs[name].append(run)
            runs.setdefault(f"{name}_hit_ratio", []).append(_hit_ratio(before, _lookups()))
    cache.flushdb()
    wrk.run(env.work, "feed", WEB_PORT, d, c, [str(tokens), "zipf"])  # warm-up
    before = _lookups()
    zipf = wrk.run(env.work, "feed", WEB_PORT, d, c, [str(tokens), "zipf"])
    ratio = _hit_ratio(before, _lookups())

    def med(name: str, attr: str) -> float | None:
        return median([getattr(r, attr) for r in runs[name]])

    const_rps = med("const", "rps")
    figures = [
        Figure(
            "reads.hit.rps",
            "feed cache-hit req/s",
            med("hot", "rps"),
            "req/s",
            const_rps,
            "constant endpoint req/s",
            "≥ 0.6x ceiling",
        ),
        Figure(
            "reads.hit.p50",
            "feed cache-hit p50",
            med("hot", "p50_ms"),
            "ms",
            med("const", "p50_ms"),
            "constant endpoint p50",
        ),
        Figure(
            "reads.hit.p99",
            "feed cache-hit p99",
            med("hot", "p99_ms"),
            "ms",
            med("const", "p99_ms"),
            "constant endpoint p99",
        ),
        Figure(
            "reads.miss.rps",
            "feed cache-miss req/s",
            med("cold", "rps"),
            "req/s",
            const_rps,
            "constant endpoint req/s",
        ),
        Figure(
            "reads.miss.p50",
            "feed cache-miss p50",
            med("cold", "p50_ms"),
            "ms",
            med("const", "p50_ms"),
            "constant endpoint p50",
        ),
        Figure(
            "reads.miss.p99",
            f"feed cache-miss p99 ({c} connections)",
            med("cold", "p99_ms"),
            "ms",
            med("const", "p99_ms"),
            "constant endpoint p99",
        ),
        Figure(
            "reads.miss.p99_3conn",
            "feed cache-miss p99 (3 connections = workers)",
            med("cold3", "p99_ms"),
            "ms",
            med("const", "p99_ms"),
            "constant endpoint p99",
            "< 20 ms",
        ),
        Figure(
            "reads.zipf.hit_ratio",
            f"feed hit ratio, Zipf over {len(users):,} users",
            ratio,
            "",
            goal="≥ 0.95",
        ),
    ]
    figures[0].met = figures[0].ratio is not None and figures[0].ratio >= 0.6
    figures[6].met = figures[6].value is not None and figures[6].value < 20
    figures[7].met = ratio is not None and ratio >= 0.95
    details = {
        k: [r if isinstance(r, float | None) else r.__dict__ for r in v] for k, v in runs.items()
    }
    details["zipf"] = zipf.__dict__
    return figures, details


def _lookups() -> dict[str, float]:
    """The web's feed-window cache lookups so far: {"hit": n, "miss": n}."""
    url = f"http://127.0.0.1:{WEB_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out = {"hit": 0.0, "miss": 0.0}
    for line in text.splitlines():
        if line.startswith("feedline_read_cache_total{") and 'kind="feed"' in line:
            result = "hit" if 'result="hit"' in line else "miss"
            out[result] += float(line.rsplit(" ", 1)[1])
    return out


def _hit_ratio(before: dict[str, float], after: dict[str, float]) -> float | None:
    hits, misses = after["hit"] - before["hit"], after["miss"] - before["miss"]
    return hits / (hits + misses) if hits + misses else None


def _seed_feeds(settings, user_ids: list[int], ctx: Ctx) -> None:
    """Write a pool of shards and ITEMS feed rows per user directly into the bench keyspace."""
    cluster, session = cassandra.connect(settings.cassandra)
    try:
        shard = session.prepare(st.get(st.UPSERT_SHARD).cql)
        feed = session.prepare(st.get(st.INSERT_FEED_ITEM).cql)
        now = datetime.now(UTC).replace(microsecond=0)
        pool = []
        for i in range(max(1000, 2 * len(user_ids))):
            sid, author = SHARD_BASE + i, ctx.rng.choice(user_ids)
            created = now - timedelta(seconds=i)
            pool.append((sid, author, created))
        work = [(shard, (s, a, f"read bench {s}", 0, 0, c, 1)) for s, a, c in pool]
        for u in user_ids:
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for s, a, c in ctx.rng.sample(pool, ITEMS):
                batch.add(feed, (u, c, s, a, 1))
            work.append((batch, None))
        for ok, res in execute_concurrent(session, work, concurrency=64, results_generator=True):
            if not ok:
                raise res
    finally:
        cluster.shutdown()
    time.sleep(0.1)
