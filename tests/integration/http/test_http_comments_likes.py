"""Comments and likes: counted in the same transaction, likes idempotent, 404 on no shard."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def shard(client, signup):
    author = signup()
    resp = client.simulate_post("/v1/shards", json={"body": "post"}, headers=author.headers)
    return resp.json


def detail(client, shard, user):
    return client.simulate_get(f"/v1/shards/{shard['id']}", headers=user.headers).json


def test_comment_is_created_and_counted(client, signup, shard):
    bob = signup()
    resp = client.simulate_post(
        f"/v1/shards/{shard['id']}/comments", json={"body": "first!"}, headers=bob.headers
    )
    assert resp.status_code == 201
    assert set(resp.json) == {"id", "shard_id", "author_id", "body", "created_at"}
    assert (resp.json["shard_id"], resp.json["author_id"]) == (shard["id"], bob.id)
    assert detail(client, shard, bob)["comment_count"] == 1


def test_comment_on_unknown_shard_is_404_and_writes_nothing(client, signup, query):
    bob = signup()
    resp = client.simulate_post(
        "/v1/shards/999999999999/comments", json={"body": "x"}, headers=bob.headers
    )
    assert resp.status_code == 404
    assert query("SELECT count(*) FROM comments WHERE author_id = %s", bob.id) == [(0,)]


def test_like_and_unlike_are_idempotent(client, signup, shard):
    bob = signup()
    path = f"/v1/shards/{shard['id']}/like"
    for _ in range(3):
        assert client.simulate_put(path, headers=bob.headers).status_code == 204
        assert detail(client, shard, bob)["like_count"] == 1
    for _ in range(3):
        assert client.simulate_delete(path, headers=bob.headers).status_code == 204
        assert detail(client, shard, bob)["like_count"] == 0


def test_like_unknown_shard_is_404(client, signup):
    bob = signup()
    for method in ("PUT", "DELETE"):
        resp = client.simulate_request(method, "/v1/shards/999999999999/like", headers=bob.headers)
        assert resp.status_code == 404


def test_concurrent_likes_are_each_counted_once(client, signup, shard):
    users = [signup() for _ in range(8)]
    path = f"/v1/shards/{shard['id']}/like"

    def like(user):
        for _ in range(3):
            assert client.simulate_put(path, headers=user.headers).status_code == 204

    threads = [threading.Thread(target=like, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert detail(client, shard, users[0])["like_count"] == len(users)
