"""Write API: create-shard and like throughput and latency beside the constant endpoint.

Peak: wrk (closed loop) against the product API and the constant Falcon app, both on the
product's gunicorn config, alternating in each repeat so drift hits both alike. Latency
at half the peak: an open-loop client (bench/client.py) at 0.5x the measured peak rate,
and the constant endpoint at the same rate as its baseline; create-shard once more with
the bench pipeline paused, to show what the co-located pipeline costs the API's tail.
"""

from __future__ import annotations

from bench import seed, wrk
from bench.client import Http, achieved_rate, open_loop
from bench.context import Ctx
from bench.env import CONST_PORT, WEB_PORT
from bench.figures import Figure
from bench.stats import median, percentile


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    env, z = ctx.env, ctx.sizes
    users = seed.create_users(env.settings, f"b{env.run_id}w", z.write_users)
    shards = seed.create_shards(env.settings, [u.id for u in users], z.write_shards, ctx.rng)
    tokens = env.work / "write-tokens.txt"
    tokens.write_text("\n".join(u.token for u in users) + "\n")
    shard_file = env.work / "write-shards.txt"
    shard_file.write_text("\n".join(map(str, shards)) + "\n")

    runs: dict[str, list] = {"const": [], "create": [], "like": []}
    d, c = z.wrk_seconds, z.wrk_connections
    for _ in range(z.repeats):
        runs["const"].append(wrk.run(env.work, "const", CONST_PORT, d, c))
        with ctx.sampler.phase("write load"):
            runs["create"].append(wrk.run(env.work, "create_shard", WEB_PORT, d, c, [str(tokens)]))
            runs["like"].append(
                wrk.run(env.work, "like", WEB_PORT, d, c, [str(tokens), str(shard_file)])
            )

    def med(name: str, attr: str) -> float | None:
        return median([getattr(r, attr) for r in runs[name]])

    half = {name: (med(name, "rps") or 0) / 2 for name in ("create", "like")}
    users_tokens = [u.token for u in users]

    def create(http: Http, i: int) -> tuple[bool, None]:
        r = http.call("POST", "/v1/shards", users_tokens[i % len(users_tokens)], {"body": "half"})
        return r.status == 201, None

    def like(http: Http, i: int) -> tuple[bool, None]:
        u = users_tokens[ctx.rng.randrange(len(users_tokens))]
        r = http.call("PUT", f"/v1/shards/{ctx.rng.choice(shards)}/like", u)
        return r.status in (200, 204), None

    def const(http: Http, i: int) -> tuple[bool, None]:
        return http.call("GET", "/const").status == 200, None

    halves: dict[str, dict] = {}
    for name, op in (("create", create), ("like", like)):
        rate = max(1.0, half[name])
        with ctx.sampler.phase("write load"):
            api = open_loop(WEB_PORT, op, rate, max(2.0, d))
        base = open_loop(CONST_PORT, const, rate, max(2.0, d))
        halves[name] = {
            "rate": rate,
            "achieved": achieved_rate(api),
            "p99_ms": _p99_ms(api),
            "const_p99_ms": _p99_ms(base),
            "errors": sum(not r.ok for r in api),
        }

    # Diagnostic: the same open loop with the bench pipeline stopped (its backlog waits in
    # Kafka), so the API shares the cores only with PostgreSQL and capture. On 2 cores the
    # pipeline and Cassandra, processing these very writes, are what stretch the tail.
    # 5 s at most: stopped longer than its Kafka session timeout (6 s), the pipeline would
    # be dropped from its group and rebalance on waking.
    rate = max(1.0, half["create"])
    with ctx.pipeline.paused():
        alone = open_loop(WEB_PORT, create, rate, min(5.0, max(2.0, d)))
    halves["create_pipeline_paused"] = {
        "rate": rate,
        "achieved": achieved_rate(alone),
        "p99_ms": _p99_ms(alone),
        "errors": sum(not r.ok for r in alone),
    }

    figures = [
        Figure(
            "write.create.rps",
            "create-shard req/s (wrk)",
            med("create", "rps"),
            "req/s",
            med("const", "rps"),
            "constant endpoint req/s",
            "≥ 0.3x ceiling",
        ),
        Figure(
            "write.create.p50",
            "create-shard p50 (wrk)",
            med("create", "p50_ms"),
            "ms",
            med("const", "p50_ms"),
            "constant endpoint p50",
        ),
        Figure(
            "write.create.p99",
            "create-shard p99 (wrk)",
            med("create", "p99_ms"),
            "ms",
            med("const", "p99_ms"),
            "constant endpoint p99",
        ),
        Figure(
            "write.like.rps",
            "like req/s (wrk)",
            med("like", "rps"),
            "req/s",
            med("const", "rps"),
            "constant endpoint req/s",
        ),
        Figure(
            "write.like.p50",
            "like p50 (wrk)",
            med("like", "p50_ms"),
            "ms",
            med("const", "p50_ms"),
            "constant endpoint p50",
        ),
        Figure(
            "write.like.p99",
            "like p99 (wrk)",
            med("like", "p99_ms"),
            "ms",
            med("const", "p99_ms"),
            "constant endpoint p99",
        ),
    ]
    for name, label in (("create", "create-shard"), ("like", "like")):
        h = halves[name]
        figures.append(
            Figure(
                f"write.{name}.p99_half_peak",
                f"{label} p99 at half peak ({h['rate']:.0f}/s, open loop)",
                h["p99_ms"],
                "ms",
                h["const_p99_ms"],
                "constant endpoint at the same rate",
                "< 50 ms",
            )
        )
    rps = figures[0]
    rps.met = rps.ratio is not None and rps.ratio >= 0.3
    for f in figures[-2:]:
        f.met = f.value is not None and f.value < 50
    paused = halves["create_pipeline_paused"]
    figures.append(
        Figure(
            "write.create.p99_half_peak_alone",
            f"create-shard p99 at half peak ({paused['rate']:.0f}/s), bench pipeline paused",
            paused["p99_ms"],
            "ms",
            halves["create"]["p99_ms"],
            "same rate, pipeline running",
        )
    )
    details = {
        "wrk": {k: [r.__dict__ for r in v] for k, v in runs.items()},
        "half_peak": halves,
        "wrk_connections": c,
        "wrk_seconds": d,
    }
    return figures, details


def _p99_ms(results: list) -> float | None:
    p = percentile([r.latency for r in results if r.ok], 99)
    return None if p is None else p * 1000
