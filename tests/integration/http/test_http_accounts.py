"""Account lifecycle on the real PostgreSQL: passwords, login, logout, expiry, deletion.

"Another worker" is a second app built on its own ``Deps``: it has its own in-process
token cache, exactly like a second gunicorn worker, and shares only the database.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import falcon.testing
import pytest

from feedline.http.app import create_app
from feedline.http.deps import Deps
from feedline.http.revocations import Revocations
from feedline.http.token_cache import TokenCache
from tests.integration.http.conftest import PASSWORD, ApiUser, unique_handle

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client, handle: str, password: str = PASSWORD):
    return client.simulate_post("/v1/sessions", json={"handle": handle, "password": password})


@pytest.fixture
def worker_b(settings, database) -> falcon.testing.TestClient:
    """A second worker: same database and Redis, its own token cache."""
    return falcon.testing.TestClient(create_app(Deps(settings=settings, db=database)))


@pytest.fixture
def deaf_worker(settings, database) -> falcon.testing.TestClient:
    """A worker whose revocation broadcast cannot work: its Redis address has no server."""
    reads = settings.reads
    revocations = Revocations("redis://127.0.0.1:1/0", reads.token_revoked_within_s)
    tokens = TokenCache(reads.token_cache_ttl_s, 1000, reads.token_revoked_within_s, revocations)
    yield falcon.testing.TestClient(create_app(Deps(settings=settings, db=database, tokens=tokens)))
    revocations.close()


def refused_within(client, token: str, bound_s: float, path: str) -> float:
    """Poll ``path`` with ``token`` until 401; return how long that took (fail past bound)."""
    start = time.monotonic()
    while True:
        status = client.simulate_get(path, headers=bearer(token)).status_code
        elapsed = time.monotonic() - start
        if status == 401:
            return elapsed
        assert status == 200, status
        assert elapsed <= bound_s, f"token still accepted {elapsed:.2f} s later"
        time.sleep(0.05)


def test_signup_stores_an_argon2id_hash_outside_the_published_tables(signup, query):
    user = signup()
    [(stored,)] = query("SELECT password_hash FROM user_passwords WHERE user_id = %s", user.id)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    published = query(
        "SELECT tablename FROM pg_publication_tables WHERE pubname = 'feedline_pub'"
        " AND tablename IN ('user_passwords', 'user_tokens')"
    )
    assert published == []


@pytest.mark.parametrize("password", [None, "", "x" * 11, "x" * 129, 123456789012, "a\x00" * 7])
def test_signup_needs_a_12_to_128_character_password(client, query, password):
    handle = unique_handle()
    body = {"handle": handle} if password is None else {"handle": handle, "password": password}
    resp = client.simulate_post("/v1/users", json=body)
    assert resp.status_code == 422, resp.text
    assert query("SELECT count(*) FROM users WHERE handle = %s", handle) == [(0,)]


def test_login_from_a_second_device_mints_another_token(client, signup, query, settings):
    user = signup()
    resp = login(client, user.handle)
    assert resp.status_code == 201, resp.text
    assert set(resp.json) == {"user_id", "handle", "token", "expires_at"}
    assert resp.json["user_id"] == user.id
    second = resp.json["token"]
    assert second != user.token
    for token in (user.token, second):
        assert client.simulate_get(f"/v1/users/{user.id}", headers=bearer(token)).status_code == 200
    [(n, ttl)] = query(
        "SELECT count(*), max(extract(epoch FROM expires_at - created_at)) FROM user_tokens"
        " WHERE user_id = %s",
        user.id,
    )
    assert n == 2
    assert abs(float(ttl) - settings.accounts.token_ttl_s) < 5


def test_wrong_password_and_unknown_handle_get_the_same_401(client, signup):
    user = signup()
    wrong = login(client, user.handle, "not the password at all")
    unknown = login(client, unique_handle())
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json
    assert wrong.headers["www-authenticate"].startswith("Bearer")


def test_logout_revokes_only_that_token_in_every_worker_within_a_second(
    client, worker_b, deaf_worker, signup
):
    user = signup()
    second = login(client, user.handle).json["token"]
    path = f"/v1/users/{user.id}"
    # The other workers have the first token in their caches now; worker B's broadcast
    # listener is up (it confirms within a ping), the deaf worker's never is.
    for worker in (worker_b, deaf_worker):
        assert worker.simulate_get(path, headers=user.headers).status_code == 200
    time.sleep(0.5)
    resp = client.simulate_delete("/v1/sessions/current", headers=user.headers)
    assert resp.status_code == 204
    # The worker that revoked it refuses it at once, the others within a second: through
    # the broadcast (worker B) or because without it entries live 1 s (the deaf worker).
    assert client.simulate_get(path, headers=user.headers).status_code == 401
    told = refused_within(worker_b, user.token, 0.3, path)
    deaf = refused_within(deaf_worker, user.token, 1.0, path)
    print(f"revoked token refused after {told:.3f} s (broadcast), {deaf:.3f} s (no broadcast)")
    for worker in (client, worker_b, deaf_worker):
        assert worker.simulate_get(path, headers=bearer(second)).status_code == 200


def test_a_token_expires_after_the_configured_ttl(settings, database, worker_b, query):
    short = dataclasses.replace(
        settings, accounts=dataclasses.replace(settings.accounts, token_ttl_s=2)
    )
    client = falcon.testing.TestClient(create_app(Deps(settings=short, db=database)))
    handle = unique_handle()
    resp = client.simulate_post("/v1/users", json={"handle": handle, "password": PASSWORD})
    assert resp.status_code == 201
    user = ApiUser(resp.json["id"], handle, resp.json["token"])
    path = f"/v1/users/{user.id}"
    for worker in (client, worker_b):
        assert worker.simulate_get(path, headers=user.headers).status_code == 200
    time.sleep(1.5)
    for worker in (client, worker_b):
        refused_within(worker, user.token, 2.0, path)
    # Logging in again gives a working token, and clears the expired one away.
    fresh = login(client, handle).json["token"]
    assert client.simulate_get(path, headers=bearer(fresh)).status_code == 200
    assert query("SELECT count(*) FROM user_tokens WHERE user_id = %s", user.id) == [(1,)]


def test_delete_account_takes_back_its_counts_and_frees_the_handle(client, signup, query):
    me, friend, fan = signup(), signup(), signup()

    def call(method, path, user, body=None):
        resp = client.simulate_request(method, path, headers=user.headers, json=body)
        assert resp.status_code in (201, 204), resp.text
        return resp.json

    theirs = call("POST", "/v1/shards", friend, {"body": "friend's"})["id"]
    mine = call("POST", "/v1/shards", me, {"body": "mine"})["id"]
    call("PUT", f"/v1/following/{friend.id}", me)
    call("PUT", f"/v1/following/{me.id}", fan)
    call("PUT", f"/v1/shards/{theirs}/like", me)
    call("POST", f"/v1/shards/{theirs}/comments", me, {"body": "nice"})
    call("PUT", f"/v1/shards/{mine}/like", fan)
    call("POST", f"/v1/shards/{mine}/comments", fan, {"body": "hi"})

    resp = client.simulate_delete("/v1/users/me", headers=me.headers)
    assert resp.status_code == 204, resp.text

    assert query("SELECT count(*) FROM users WHERE id = %s", me.id) == [(0,)]
    for table, column in [
        ("user_tokens", "user_id"),
        ("user_passwords", "user_id"),
        ("shards", "author_id"),
        ("comments", "author_id"),
        ("likes", "user_id"),
        ("followers", "follower_id"),
        ("followers", "followee_id"),
    ]:
        sql = f"SELECT count(*) FROM {table} WHERE {column} = %s"  # noqa: S608
        assert query(sql, me.id) == [(0,)], table
    assert query("SELECT count(*) FROM comments WHERE shard_id = %s", mine) == [(0,)]
    counts = "SELECT follower_count, following_count FROM users WHERE id = %s"
    assert query(counts, friend.id) == [(0, 0)]
    assert query(counts, fan.id) == [(0, 0)]
    shard_counts = "SELECT like_count, comment_count FROM shards WHERE id = %s"
    assert query(shard_counts, theirs) == [(0, 0)]

    assert client.simulate_get("/v1/feed", headers=me.headers).status_code == 401
    assert login(client, me.handle).status_code == 401
    again = client.simulate_post("/v1/users", json={"handle": me.handle, "password": PASSWORD})
    assert again.status_code == 201
    assert again.json["id"] != me.id


def test_a_write_racing_the_deletion_is_a_409_not_a_500(client, deaf_worker, signup):
    me, friend = signup(), signup()
    shard = client.simulate_post("/v1/shards", json={"body": "x"}, headers=friend.headers)
    theirs = shard.json["id"]
    # The other worker caches my token, then worker A deletes the account. Without the
    # broadcast the other worker lets the token through for up to a second (with it, for
    # the few milliseconds the message takes); the writes then find the user gone.
    other = deaf_worker
    assert other.simulate_get(f"/v1/users/{me.id}", headers=me.headers).status_code == 200
    assert client.simulate_delete("/v1/users/me", headers=me.headers).status_code == 204
    post = other.simulate_post("/v1/shards", json={"body": "late"}, headers=me.headers)
    like = other.simulate_put(f"/v1/shards/{theirs}/like", headers=me.headers)
    for resp in (post, like):
        assert resp.status_code in (401, 409), resp.text
        assert set(resp.json) == {"title", "description"}
    assert 409 in (post.status_code, like.status_code)  # the race was actually exercised


def test_two_users_entangled_with_each_other_deleting_at_once_both_succeed(
    client, worker_b, signup, query, caplog
):
    """Each deletion changes the other's counts (follows both ways, likes and comments on
    each other's shards). Both lock the users involved in id order before the cascade,
    so one waits for the other: no deadlock, no retry, and the counts left are exact."""
    a, b, bystander = signup(), signup(), signup()
    for follower, followee in ((a, b), (b, a), (bystander, a), (bystander, b)):
        resp = client.simulate_put(f"/v1/following/{followee.id}", headers=follower.headers)
        assert resp.status_code == 204
    shards = {}
    for user in (a, b, bystander):
        resp = client.simulate_post("/v1/shards", json={"body": "x"}, headers=user.headers)
        shards[user.id] = resp.json["id"]
    for user, other in ((a, b), (b, a), (a, bystander), (b, bystander)):
        shard = shards[other.id]
        assert (
            client.simulate_put(f"/v1/shards/{shard}/like", headers=user.headers).status_code == 204
        )
        resp = client.simulate_post(
            f"/v1/shards/{shard}/comments", json={"body": "c"}, headers=user.headers
        )
        assert resp.status_code == 201
    results: dict[int, int] = {}
    start = threading.Barrier(2)

    def delete(worker, user) -> None:
        start.wait()
        results[user.id] = worker.simulate_delete("/v1/users/me", headers=user.headers).status_code

    caplog.set_level("WARNING", logger="feedline.db")
    threads = [
        threading.Thread(target=delete, args=(client, a)),
        threading.Thread(target=delete, args=(worker_b, b)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {a.id: 204, b.id: 204}
    assert [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()] == []
    assert query("SELECT count(*) FROM users WHERE id IN (%s, %s)", a.id, b.id) == [(0,)]
    assert query(
        "SELECT follower_count, following_count, shard_count FROM users WHERE id = %s",
        bystander.id,
    ) == [(0, 0, 1)]
    assert query(
        "SELECT like_count, comment_count FROM shards WHERE id = %s", shards[bystander.id]
    ) == [(0, 0)]


def test_login_rehashes_a_password_stored_at_a_lower_cost(settings, database, signup, query):
    user = signup()  # hashed at the default cost (2 passes)
    accounts = dataclasses.replace(settings.accounts, argon2_time_cost=3)
    stronger = dataclasses.replace(settings, accounts=accounts)
    client = falcon.testing.TestClient(create_app(Deps(settings=stronger, db=database)))
    assert login(client, user.handle).status_code == 201
    [(stored,)] = query("SELECT password_hash FROM user_passwords WHERE user_id = %s", user.id)
    assert ",t=3," in stored
    assert login(client, user.handle).status_code == 201  # the new hash verifies
