"""Post, read and delete shards; the author's shard_count follows in the same transaction."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def post_shard(client, user, body="hello"):
    resp = client.simulate_post("/v1/shards", json={"body": body}, headers=user.headers)
    assert resp.status_code == 201, resp.text
    return resp.json


def shard_count(client, user):
    return client.simulate_get(f"/v1/users/{user.id}", headers=user.headers).json["shard_count"]


def test_post_returns_the_shard_and_counts_it(client, signup):
    alice = signup()
    shard = post_shard(client, alice, "hello 🙂")
    assert set(shard) == {"id", "author_id", "body", "created_at"}
    assert shard["author_id"] == alice.id
    assert shard["body"] == "hello 🙂"
    assert shard_count(client, alice) == 1


def test_get_shows_counts(client, signup):
    alice, bob = signup(), signup()
    shard = post_shard(client, alice)
    client.simulate_put(f"/v1/shards/{shard['id']}/like", headers=bob.headers)
    client.simulate_post(
        f"/v1/shards/{shard['id']}/comments", json={"body": "nice"}, headers=bob.headers
    )
    resp = client.simulate_get(f"/v1/shards/{shard['id']}", headers=bob.headers)
    assert resp.status_code == 200
    assert resp.json == {**shard, "like_count": 1, "comment_count": 1}


def test_get_unknown_shard_is_404(client, signup):
    alice = signup()
    assert client.simulate_get("/v1/shards/999999999999", headers=alice.headers).status_code == 404


def test_only_the_author_may_delete(client, signup, query):
    alice, bob = signup(), signup()
    shard = post_shard(client, alice)
    resp = client.simulate_delete(f"/v1/shards/{shard['id']}", headers=bob.headers)
    assert resp.status_code == 403
    assert set(resp.json) == {"title", "description"}
    assert query("SELECT count(*) FROM shards WHERE id = %s", shard["id"]) == [(1,)]
    assert shard_count(client, alice) == 1


def test_delete_removes_the_shard_its_comments_and_likes_and_uncounts_it(client, signup, query):
    alice, bob = signup(), signup()
    shard = post_shard(client, alice)
    sid = shard["id"]
    client.simulate_put(f"/v1/shards/{sid}/like", headers=bob.headers)
    client.simulate_post(f"/v1/shards/{sid}/comments", json={"body": "x"}, headers=bob.headers)
    assert client.simulate_delete(f"/v1/shards/{sid}", headers=alice.headers).status_code == 204
    assert client.simulate_get(f"/v1/shards/{sid}", headers=alice.headers).status_code == 404
    assert client.simulate_delete(f"/v1/shards/{sid}", headers=alice.headers).status_code == 404
    assert query("SELECT count(*) FROM comments WHERE shard_id = %s", sid) == [(0,)]
    assert query("SELECT count(*) FROM likes WHERE shard_id = %s", sid) == [(0,)]
    assert shard_count(client, alice) == 0
