"""Fan-out: time from a shard's commit until it is in every follower's feed.

For each size one author (a real user, posting through the bench API) gets that many
followers written directly into followers_by_user in the bench keyspace, in
single-partition batches: seeding 100,000 follows through the API and CDC would take far
longer than the measurement and measures something else. The clock starts at the API's
201 (the transaction has committed) and stops at the first poll where the bench pipeline
has finished the shard's events (events_done grew by 2: the shard and its author's
shard_count) and a sample of followers (the last 20 in the partition plus random ones)
all have the row; every follower's row is then checked (a sample of 2,000 above 10,000).
The baseline writes the same feed rows for another shard with the driver alone.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from cassandra.concurrent import execute_concurrent

from bench import seed
from bench.client import Http
from bench.context import Ctx
from bench.env import PIPELINE_PORT, WEB_PORT, events_done, wait_caught_up
from bench.figures import Figure
from bench.probe import in_every_feed
from bench.stats import fit_power, median
from feedline import cassandra
from feedline import statements as st
from feedline.strategies.decode import parse_timestamptz

FOLLOWER_BASE = 500_000_000_000
POLL_S = 0.05
CONCURRENCY = 64


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    env, z = ctx.env, ctx.sizes
    authors = seed.create_users(env.settings, f"b{env.run_id}f", len(z.fanout_sizes))
    cluster, session = cassandra.connect(env.settings.cassandra)
    check = session.prepare(
        "SELECT shard_id FROM feed_by_user WHERE user_id = ? AND created_at = ? AND shard_id = ?"
    )
    insert = session.prepare(st.get(st.INSERT_FEED_ITEM).cql)
    results: dict[int, dict] = {}
    try:
        for k, (size, author) in enumerate(zip(z.fanout_sizes, authors, strict=True)):
            followers = [FOLLOWER_BASE + k * 1_000_000 + j for j in range(size)]
            seed.write_followers(session, author.id, followers)
            repeats = z.repeats if size <= 1000 else 1
            times, bases, verified = [], [], []
            for _ in range(repeats):
                wait_caught_up(PIPELINE_PORT)
                with ctx.sampler.phase(f"fan-out {size:,}", {"pipeline": ctx.pipeline}):
                    t, ok = _one(ctx, session, check, author, followers)
                times.append(t)
                verified.append(ok)
                bases.append(_baseline(session, insert, author.id, followers))
            results[size] = {"seconds": times, "baseline_seconds": bases, "verified": verified}
    finally:
        cluster.shutdown()
    figures = []
    for size, r in results.items():
        figures.append(
            Figure(
                f"fanout.{size}",
                f"shard commit -> in all {size:,} followers' feeds",
                median(r["seconds"]),
                "s",
                median(r["baseline_seconds"]),
                "same feed rows, driver alone",
                note="" if all(r["verified"]) else "unverified",
            )
        )
    sizes = [s for s in results if s >= 1000] or list(results)
    slope = fit_power(sizes, [median(results[s]["seconds"]) for s in sizes])
    per10 = [
        (median(results[b]["seconds"]) or 0) / (median(results[a]["seconds"]) or 1)
        for a, b in zip(list(results), list(results)[1:], strict=False)
    ]
    figures.append(
        Figure(
            "fanout.growth",
            f"growth exponent t ~ n^k (sizes {sizes})",
            slope,
            "k",
            fit_power(sizes, [median(results[s]["baseline_seconds"]) for s in sizes]),
            "baseline exponent",
            note="1.0 = linear",
        )
    )
    return figures, {"sizes": results, "ratio_per_10x": per10}


def _one(ctx: Ctx, session, check, author, followers: list[int]) -> tuple[float, bool]:
    before = events_done(PIPELINE_PORT)
    reply = Http(WEB_PORT).call("POST", "/v1/shards", author.token, {"body": "fan-out bench"})
    committed = time.monotonic()
    if reply.status != 201:
        raise RuntimeError(f"POST /v1/shards: {reply.status} {reply.body}")
    sid, created = reply.body["id"], parse_timestamptz(reply.body["created_at"])
    sample = followers[-20:] + ctx.rng.sample(followers, min(30, len(followers)))
    timeout = 60 + len(followers) / 200
    while True:
        if events_done(PIPELINE_PORT) >= before + 2 and in_every_feed(
            session, check, sample, created, sid
        ):
            elapsed = time.monotonic() - committed
            break
        if time.monotonic() - committed > timeout:
            raise RuntimeError(f"fan-out to {len(followers)} not done in {timeout:.0f}s")
        time.sleep(POLL_S)
    full = followers if len(followers) <= 10_000 else ctx.rng.sample(followers, 2000)
    return elapsed, in_every_feed(session, check, full, created, sid)


def _baseline(session, insert, author_id: int, followers: list[int]) -> float:
    """Write one synthetic shard's rows into every follower's feed; return seconds."""
    created = datetime.now(UTC).replace(microsecond=0)
    sid = FOLLOWER_BASE + int(time.time() * 1000)
    start = time.monotonic()
    args = [(insert, (f, created, sid, author_id, 1)) for f in followers]
    for ok, res in execute_concurrent(
        session, args, concurrency=CONCURRENCY, results_generator=True
    ):
        if not ok:
            raise res
    return time.monotonic() - start
