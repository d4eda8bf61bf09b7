"""What a rate-limit check costs per request: web CPU and wall time, with and without it.

``python -m bench.ratelimit_cost [N]`` builds two tiny Falcon apps that differ only in the
limiter middleware (feedline.http.ratelimit, on the real Redis of the settings), each with
a stub auth middleware and a resource that does nothing, and calls them in-process through
WSGI, alternating in rounds so drift hits both alike. Reported per request (median of the
rounds): the process CPU and the wall time of the whole request, for a limited route
(POST /v1/shards, per user) and a route without a rule (GET /v1/feed); the failed-token
hooks; and Redis's own CPU per EVALSHA (INFO commandstats). Then the same through the real
app (create_app: auth with its token cache, PostgreSQL): an idempotent like (PUT on a shard
already liked: a limited route, a real transaction, no new row and so no change event), with
the limits on and with ``FEEDLINE_RATE_ENABLED=0``, alternating in rounds. Limits are set
far above N so nothing is refused: the cost measured is the counting.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from typing import Any

import falcon
import falcon.testing
import redis

from feedline.http.auth import hash_token, new_token
from feedline.http.ratelimit import RateLimiter
from feedline.settings import load


class StubAuth:
    def process_resource(self, req: Any, resp: Any, resource: Any, params: dict) -> None:
        req.context.user_id = 42


class Nothing:
    def on_post(self, req: Any, resp: Any) -> None:
        resp.status = falcon.HTTP_201

    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = {}


def build(limiter: RateLimiter | None) -> falcon.App:
    middleware: list[Any] = [StubAuth()] + ([limiter] if limiter else [])
    app = falcon.App(middleware=middleware)
    app.add_route("/v1/shards", Nothing())
    app.add_route("/v1/feed", Nothing())
    return app


def per_request(client: falcon.testing.TestClient, method: str, path: str, n: int):
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        client.simulate_request(method, path, remote_addr="198.18.0.1")
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def evalsha_usec(r: redis.Redis) -> tuple[int, float]:
    stats = r.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), float(stats.get("usec", 0))


def main(n: int = 2000, rounds: int = 7) -> None:
    settings = load()
    rate = dataclasses.replace(
        settings.rate, posts="100000000/minute", failed_auth="100000000/minute"
    )
    limiter = RateLimiter(rate, settings.redis.url)
    apps = {"without": build(None), "with": build(limiter)}
    clients = {k: falcon.testing.TestClient(a) for k, a in apps.items()}
    r = redis.Redis.from_url(settings.redis.url)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    calls0, usec0 = evalsha_usec(r)
    for _ in range(rounds):
        for route in (("POST", "/v1/shards"), ("GET", "/v1/feed")):
            for name, client in clients.items():
                per_request(client, *route, n=n // 10)  # warm
                results.setdefault((name, route[1]), []).append(per_request(client, *route, n))
    calls1, usec1 = evalsha_usec(r)
    print(f"{n} requests x {rounds} rounds, in-process WSGI, Redis at {settings.redis.url}")
    for route in ("/v1/shards", "/v1/feed"):
        base = [statistics.median(x) for x in zip(*results[("without", route)], strict=True)]
        lim = [statistics.median(x) for x in zip(*results[("with", route)], strict=True)]
        print(
            f"  {route:<11} without: {base[0]:6.1f} us CPU {base[1]:6.1f} us wall;"
            f" with: {lim[0]:6.1f} us CPU {lim[1]:6.1f} us wall;"
            f" limiter: +{lim[0] - base[0]:5.1f} us CPU, +{lim[1] - base[1]:5.1f} us wall"
        )
    if calls1 > calls0:
        print(f"  Redis CPU per EVALSHA: {(usec1 - usec0) / (calls1 - calls0):.1f} us")
    req = falcon.testing.create_req(remote_addr="198.18.0.2")
    digests = [hash_token(new_token()) for _ in range(n)]
    t0 = time.perf_counter()
    for d in digests:
        limiter.refuse_token_lookup(req, d)
    t1 = time.perf_counter()
    for d in digests:
        limiter.failed_token_lookup(req, d)
    t2 = time.perf_counter()
    for d in digests:
        limiter.refuse_token_lookup(req, d)  # now negatively cached
    t3 = time.perf_counter()
    print(
        f"  token hooks: refuse_token_lookup {(t1 - t0) / n * 1e6:.1f} us (unknown hash),"
        f" {(t3 - t2) / n * 1e6:.1f} us (cached miss); failed_token_lookup"
        f" {(t2 - t1) / n * 1e6:.1f} us"
    )


def through_app(n: int = 500, rounds: int = 5) -> None:
    from feedline.db import Database
    from feedline.http.app import create_app
    from feedline.http.deps import Deps

    settings = load()
    on = dataclasses.replace(settings.rate, likes="100000000/minute")
    db = Database(settings.postgres)
    try:
        clients = {
            name: falcon.testing.TestClient(
                create_app(Deps(settings=dataclasses.replace(settings, rate=rate), db=db))
            )
            for name, rate in (("off", dataclasses.replace(on, enabled=False)), ("on", on))
        }
        handle = f"brl_{new_token()[:8].lower().replace('-', '_')}"
        body = {"handle": handle, "password": "ratelimit-cost-password"}
        user = clients["off"].simulate_post("/v1/users", json=body).json
        headers = {"Authorization": f"Bearer {user['token']}"}
        shard = clients["off"].simulate_post("/v1/shards", json={"body": "x"}, headers=headers)
        path = f"/v1/shards/{shard.json['id']}/like"
        results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        for _ in range(rounds):
            for name, client in clients.items():
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(n):
                    assert client.simulate_put(path, headers=headers).status_code == 204
                results[name].append(
                    ((time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6)
                )
        off, on_ = ([statistics.median(x) for x in zip(*results[k], strict=True)]
                    for k in ("off", "on"))  # fmt: skip
        print(
            f"  real app, PUT {path} x {n} x {rounds}: limits off {off[0]:.0f} us CPU"
            f" {off[1]:.0f} us wall; on {on_[0]:.0f} us CPU {on_[1]:.0f} us wall;"
            f" limiter +{on_[0] - off[0]:.0f} us CPU, +{on_[1] - off[1]:.0f} us wall"
        )
        clients["off"].simulate_delete("/v1/users/me", headers=headers)
    finally:
        db.close()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
    through_app()
