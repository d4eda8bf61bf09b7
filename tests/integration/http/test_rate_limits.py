"""Rate limits on the real Redis and PostgreSQL (issue 14): 429 after N, Retry-After, one
counter per client IP or per user, the matched route decides, and a dead Redis fails open.

Each test builds its own app with low limits and speaks from its own random address in
198.18.0.0/15 (a range for tests), so its counters are its own even though the Redis is
shared with other suites and developers.
"""

from __future__ import annotations

import dataclasses
import inspect
import secrets
import time
from collections.abc import Callable

import falcon
import falcon.testing
import pytest

from feedline.db import Database
from feedline.http import ratelimit
from feedline.http.app import create_app
from feedline.http.auth import AuthMiddleware, hash_token
from feedline.http.deps import Deps
from feedline.http.ratelimit import KEY_PREFIX, ROUTE_RULES, RateLimiter, subject_of
from feedline.http.routes import ROUTES
from feedline.settings import Settings
from tests.integration.http.conftest import PASSWORD, unique_handle

pytestmark = pytest.mark.integration


def random_ip() -> str:
    return f"198.{18 + secrets.randbelow(2)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def limited(settings: Settings, **rates: str) -> Settings:
    return dataclasses.replace(settings, rate=dataclasses.replace(settings.rate, **rates))


@pytest.fixture
def make_client(settings: Settings, database: Database) -> Callable[..., falcon.testing.TestClient]:
    def make(**rates: str) -> falcon.testing.TestClient:
        return falcon.testing.TestClient(
            create_app(Deps(settings=limited(settings, **rates), db=database))
        )

    return make


def sign_up(client: falcon.testing.TestClient, ip: str, path: str = "/v1/users"):
    body = {"handle": unique_handle("rl"), "password": PASSWORD}
    return client.simulate_post(path, json=body, remote_addr=ip)


def assert_429(resp, limit_window_s: int = 60) -> None:
    assert resp.status_code == 429, resp.text
    assert set(resp.json) == {"title", "description"}
    retry = int(resp.headers["retry-after"])
    assert 1 <= retry <= limit_window_s


def test_sign_up_is_limited_per_ip_with_retry_after(make_client):
    client = make_client(signup="3/minute")
    ip, other = random_ip(), random_ip()
    assert [sign_up(client, ip).status_code for _ in range(3)] == [201, 201, 201]
    assert_429(sign_up(client, ip))
    assert sign_up(client, other).status_code == 201  # another address has its own count


def test_the_matched_route_decides_not_the_raw_path(make_client):
    client = make_client(signup="2/minute")
    ip = random_ip()
    assert sign_up(client, ip, "//v1/users").status_code == 201
    assert sign_up(client, ip, "///v1/users").status_code == 201
    assert_429(sign_up(client, ip, "/v1/users"))
    # A route without a rule costs nothing and is never refused.
    assert client.simulate_get("/health", remote_addr=ip).status_code == 200


def test_login_is_limited_per_ip_whatever_the_outcome(make_client, signup):
    user = signup()
    client = make_client(login="2/minute")
    ip = random_ip()
    wrong = {"handle": user.handle, "password": "not the password at all"}
    right = {"handle": user.handle, "password": PASSWORD}
    assert client.simulate_post("/v1/sessions", json=wrong, remote_addr=ip).status_code == 401
    assert client.simulate_post("/v1/sessions", json=right, remote_addr=ip).status_code == 201
    assert_429(client.simulate_post("/v1/sessions", json=right, remote_addr=ip))
    other = client.simulate_post("/v1/sessions", json=right, remote_addr=random_ip())
    assert other.status_code == 201


def test_posts_are_limited_per_user_not_per_address(make_client):
    client = make_client(posts="2/minute")
    ip = random_ip()
    alice, bob = (sign_up(client, ip).json for _ in range(2))

    def post(user: dict) -> falcon.testing.Result:
        headers = {"Authorization": f"Bearer {user['token']}"}
        return client.simulate_post("/v1/shards", json={"body": "hi"}, headers=headers,
                                    remote_addr=ip)  # fmt: skip

    assert [post(alice).status_code for _ in range(2)] == [201, 201]
    assert_429(post(alice))
    assert post(bob).status_code == 201  # same address, another user: its own count


def test_likes_and_unlikes_share_one_count_as_do_follows(make_client):
    client = make_client(likes="3/minute", follows="2/minute", comments="1/minute")
    ip = random_ip()
    alice, bob = (sign_up(client, ip).json for _ in range(2))
    headers = {"Authorization": f"Bearer {alice['token']}"}
    bob_h = {"Authorization": f"Bearer {bob['token']}"}
    shard = client.simulate_post("/v1/shards", json={"body": "x"}, headers=bob_h).json["id"]
    like = f"/v1/shards/{shard}/like"
    statuses = [
        client.simulate_put(like, headers=headers).status_code,
        client.simulate_delete(like, headers=headers).status_code,
        client.simulate_put(like, headers=headers).status_code,
    ]
    assert all(s < 300 for s in statuses), statuses
    assert_429(client.simulate_delete(like, headers=headers))
    follow = f"/v1/following/{bob['id']}"
    assert client.simulate_put(follow, headers=headers).status_code < 300
    assert client.simulate_delete(follow, headers=headers).status_code < 300
    assert_429(client.simulate_put(follow, headers=headers))
    comments = f"/v1/shards/{shard}/comments"
    assert client.simulate_post(comments, json={"body": "c"}, headers=headers).status_code == 201
    assert_429(client.simulate_post(comments, json={"body": "c"}, headers=headers))


def test_reads_are_never_limited(make_client):
    client = make_client(posts="1/minute", likes="1/minute", follows="1/minute")
    ip = random_ip()
    user = sign_up(client, ip).json
    headers = {"Authorization": f"Bearer {user['token']}"}
    for _ in range(5):
        assert client.simulate_get(f"/v1/users/{user['id']}", headers=headers).status_code == 200


def test_a_dead_redis_fails_open_fast(settings, database):
    dead = limited(settings, signup="1/minute", redis_url="redis://127.0.0.1:1/0")
    client = falcon.testing.TestClient(create_app(Deps(settings=dead, db=database)))
    ip = random_ip()
    before = ratelimit.FAILED_OPEN._value.get()
    started = time.monotonic()
    assert [sign_up(client, ip).status_code for _ in range(3)] == [201, 201, 201]
    assert time.monotonic() - started < 3.0  # three argon2 hashes, no waiting on Redis
    assert ratelimit.FAILED_OPEN._value.get() - before == 3


def test_the_breaker_skips_a_dead_redis_then_comes_back(settings):
    rate = dataclasses.replace(
        settings.rate, signup="100/minute", redis_url="redis://127.0.0.1:1/0"
    )
    limiter = RateLimiter(rate, settings.redis.url)
    subject = f"ip:{random_ip()}"
    assert limiter.check("signup", subject) is None  # the failing call opens the breaker
    assert limiter._breaker.failing
    assert limiter.check("signup", subject) is None  # skipped: no call at all
    # Redis "comes back" (the same limiter pointed at the live one): the next probe closes it.
    live = RateLimiter(dataclasses.replace(rate, redis_url=""), settings.redis.url)
    limiter._limiter, limiter._acquire = live._limiter, live._acquire
    limiter._breaker._open_until = 0.0
    assert limiter.check("signup", subject) is None
    assert not limiter._breaker.failing


def test_failed_token_lookups_are_limited_per_ip_and_cached(settings):
    limiter = RateLimiter(
        dataclasses.replace(settings.rate, failed_auth="3/minute"), settings.redis.url
    )
    ip = random_ip()
    req = falcon.testing.create_req(remote_addr=ip)
    digests = [hash_token(secrets.token_urlsafe(32)) for _ in range(4)]
    for digest in digests[:3]:
        assert limiter.refuse_token_lookup(req, digest) is False  # go ahead and query
        limiter.failed_token_lookup(req, digest)
    assert limiter.refuse_token_lookup(req, digests[0]) is True  # known bad: no query
    assert limiter.refuse_token_lookup(req, digests[3]) is False
    with pytest.raises(falcon.HTTPTooManyRequests) as exc:
        limiter.failed_token_lookup(req, digests[3])  # the 4th miss
    assert 1 <= int(exc.value.headers["Retry-After"]) <= 60
    # From now on this worker refuses the address's lookups without a query or Redis call.
    with pytest.raises(falcon.HTTPTooManyRequests):
        limiter.refuse_token_lookup(req, hash_token(secrets.token_urlsafe(32)))
    other = falcon.testing.create_req(remote_addr=random_ip())
    assert limiter.refuse_token_lookup(other, hash_token(secrets.token_urlsafe(32))) is False


@pytest.mark.skipif(
    "limiter" not in inspect.signature(AuthMiddleware).parameters,
    reason="AuthMiddleware does not take the limiter yet",
)
def test_the_app_limits_failed_token_lookups_without_querying_repeats(settings, database):
    queries = []

    class Counting(Database):
        def run(self, work, *args, **kwargs):
            queries.append(1)
            return super().run(work, *args, **kwargs)

        def read(self, work, *args, **kwargs):  # token lookups
            queries.append(1)
            return super().read(work, *args, **kwargs)

    db = Counting(settings.postgres)
    try:
        app = create_app(Deps(settings=limited(settings, failed_auth="2/minute"), db=db))
        client = falcon.testing.TestClient(app)
        ip = random_ip()

        def feed(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return client.simulate_get("/v1/feed", headers=headers, remote_addr=ip).status_code

        bad = secrets.token_urlsafe(32)
        assert feed(bad) == 401
        assert len(queries) == 1
        assert [feed(bad) for _ in range(5)] == [401] * 5
        assert len(queries) == 1  # repeats are answered from the negative cache
        assert feed(secrets.token_urlsafe(32)) == 401
        assert feed(secrets.token_urlsafe(32)) == 429  # the third distinct miss
        assert feed(secrets.token_urlsafe(32)) == 429
        assert len(queries) == 3
    finally:
        db.close()


def test_counters_live_outside_the_near_cache_prefix(settings, redis_client):
    from feedline.cache_keys import PREFIX

    limiter = RateLimiter(settings.rate, settings.redis.url)
    subject = f"ip:{random_ip()}"
    assert limiter.check("signup", subject) is None
    keys = redis_client.keys(f"*{subject}*")
    assert keys and all(k.decode().startswith(f"{KEY_PREFIX}:") for k in keys)
    assert not any(k.decode().startswith(PREFIX) for k in keys)
    assert all(0 < redis_client.pttl(k) <= 120_000 for k in keys)  # they expire by themselves


def test_every_rule_names_a_routed_template_and_method():
    routes = dict(ROUTES)
    for (method, template), rule in ROUTE_RULES.items():
        assert template in routes, template
        assert f"on_{method.lower()}" in vars(routes[template]), (method, template)
        assert rule in ratelimit.WHAT


def test_client_address_subjects_and_trusted_proxies(settings):
    assert subject_of("203.0.113.7") == "ip:203.0.113.7"
    assert subject_of("2001:db8:1:2:3:4:5:6") == "ip:2001:db8:1:2::/64"
    assert subject_of("2001:db8:1:2:ffff::1") == subject_of("2001:db8:1:2::9")
    assert subject_of("::ffff:203.0.113.7") == "ip:203.0.113.7"
    plain = RateLimiter(settings.rate, settings.redis.url)
    spoof = {"X-Forwarded-For": "1.2.3.4"}
    req = falcon.testing.create_req(remote_addr="10.0.0.5", headers=spoof)
    assert plain.client(req) == "ip:10.0.0.5"  # no trusted proxy: the header is ignored
    proxied = RateLimiter(
        dataclasses.replace(settings.rate, trusted_proxies=("10.0.0.0/8",)), settings.redis.url
    )
    xff = {"X-Forwarded-For": "1.2.3.4, 203.0.113.9, 10.0.0.6"}
    req = falcon.testing.create_req(remote_addr="10.0.0.5", headers=xff)
    assert proxied.client(req) == "ip:203.0.113.9"  # rightmost hop that is not a proxy
    req = falcon.testing.create_req(remote_addr="192.0.2.1", headers=xff)
    assert proxied.client(req) == "ip:192.0.2.1"  # not from a proxy: the header is ignored


def test_rate_settings_are_checked_when_loaded(monkeypatch):
    from feedline.errors import ConfigError
    from feedline.settings import load

    monkeypatch.setenv("FEEDLINE_RATE_POSTS", "5/minute; 50 per hour")
    monkeypatch.setenv("FEEDLINE_RATE_TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::1")
    rate = load().rate
    assert rate.posts == "5/minute; 50 per hour"
    assert rate.trusted_proxies == ("10.0.0.0/8", "2001:db8::1")
    assert [str(i) for i in ratelimit.parse_many(rate.posts)] == ["5 per 1 minute", "50 per 1 hour"]
    monkeypatch.setenv("FEEDLINE_RATE_POSTS", "5/fortnight")
    with pytest.raises(ConfigError, match="FEEDLINE_RATE_POSTS"):
        load()
    monkeypatch.setenv("FEEDLINE_RATE_POSTS", "5/minute")
    monkeypatch.setenv("FEEDLINE_RATE_TRUSTED_PROXIES", "proxy.internal")
    with pytest.raises(ConfigError, match="FEEDLINE_RATE_TRUSTED_PROXIES"):
        load()
