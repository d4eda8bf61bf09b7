"""What bounding token revocation to 1 s costs a worker's authentication, in one run.

Compared: the cache as it was before tokens could be revoked (60 s, nothing bounded), 60 s
with broadcast revocations (:mod:`feedline.http.revocations`, what Feedline does), and a
plain 1 s cache; the last two both refuse a revoked token in every worker within 1 s.

One worker's share of the API's traffic is replayed at a fixed pace: ``RATE`` requests a
second, each from a user drawn Zipf-like (P(rank r) ~ 1/r) over ``USERS`` real users with
real tokens in the local PostgreSQL, and only the authentication step runs
(``AuthMiddleware._user_id``: the token cache, and a PostgreSQL lookup on a miss). Each cache
gets a warm-up of ``WARMUP_S`` (the 60 s cache's steady state), then ``SECONDS`` measured;
the caches run back to back on the same machine. Reported per cache: the share of measured
requests that missed and the web process's CPU per request (thread CPU time of the
lookups, so the pacing sleeps cost nothing; PostgreSQL's own CPU comes on top).

    python -m bench.token_cache_cost    # needs the stack up (make stack-up); ~3 minutes
"""

from __future__ import annotations

import random
import secrets
import time

from bench.seed import create_users
from feedline.db import Database
from feedline.http.auth import AuthMiddleware
from feedline.http.revocations import Revocations
from feedline.http.token_cache import TokenCache
from feedline.settings import load

USERS = 2_000
RATE = 100.0  # requests/s reaching one worker (300/s over the default 3 workers)
SECONDS = 20.0
WARMUP_S = 60.0


def configs(settings) -> list[tuple[str, TokenCache]]:
    """The caches compared: before revocation existed, and the two ways to bound it."""
    return [
        ("before: 60 s, no revocation at all", TokenCache(60.0, 100_000, 60.0)),
        (
            "60 s + broadcast revocations (Feedline)",
            TokenCache(60.0, 100_000, 1.0, Revocations(settings.redis.url)),
        ),
        ("1 s, no broadcast", TokenCache(1.0, 100_000, 1.0)),
    ]


def zipf_tokens(tokens: list[str], n: int, rng: random.Random) -> list[str]:
    weights = [1.0 / rank for rank in range(1, len(tokens) + 1)]
    return rng.choices(tokens, weights=weights, k=n)


def run(auth: AuthMiddleware, cache: TokenCache, draws: list[str]) -> tuple[float, float]:
    """Replay ``draws`` at RATE; return (miss share, CPU µs per request)."""
    misses = 0
    cpu = 0.0
    start = time.monotonic()
    for i, token in enumerate(draws):
        delay = start + i / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        before_hit = cache.get(_digest(token)) is not None
        c0 = time.thread_time()
        auth._user_id(None, token)  # no rate limiter here: the request is not used
        cpu += time.thread_time() - c0
        misses += not before_hit
    return misses / len(draws), cpu / len(draws) * 1e6


def _digest(token: str) -> bytes:
    from feedline.http.auth import hash_token

    return hash_token(token)


def main() -> None:
    settings = load()
    db = Database(settings.postgres)
    users = create_users(settings, f"tk{secrets.token_hex(3)}", USERS)
    tokens = [u.token for u in users]
    rng = random.Random(7)
    for name, cache in configs(settings):
        auth = AuthMiddleware(db, tokens=cache)
        run(auth, cache, zipf_tokens(tokens, int(RATE * WARMUP_S), rng))
        miss, cpu = run(auth, cache, zipf_tokens(tokens, int(RATE * SECONDS), rng))
        print(f"{name:<44} misses {miss:6.1%}, auth CPU {cpu:6.1f} us/request")
    db.close()


if __name__ == "__main__":
    main()
