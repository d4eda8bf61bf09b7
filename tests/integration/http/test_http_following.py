"""Follow and unfollow: idempotent, counted once, in the same transaction."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.integration


def counts(client, user, viewer):
    body = client.simulate_get(f"/v1/users/{user.id}", headers=viewer.headers).json
    return body["follower_count"], body["following_count"]


def test_follow_is_idempotent_and_counted_once(client, signup, query):
    alice, bob = signup(), signup()
    for _ in range(3):
        assert (
            client.simulate_put(f"/v1/following/{bob.id}", headers=alice.headers).status_code == 204
        )
        assert counts(client, alice, alice) == (0, 1)
        assert counts(client, bob, alice) == (1, 0)
    rows = query(
        "SELECT count(*) FROM followers WHERE follower_id = %s AND followee_id = %s",
        alice.id,
        bob.id,
    )
    assert rows == [(1,)]


def test_unfollow_is_idempotent_and_never_negative(client, signup):
    alice, bob = signup(), signup()
    client.simulate_put(f"/v1/following/{bob.id}", headers=alice.headers)
    for _ in range(3):
        resp = client.simulate_delete(f"/v1/following/{bob.id}", headers=alice.headers)
        assert resp.status_code == 204
        assert counts(client, alice, alice) == (0, 0)
        assert counts(client, bob, alice) == (0, 0)


def test_following_yourself_is_422(client, signup):
    alice = signup()
    for method in ("PUT", "DELETE"):
        resp = client.simulate_request(method, f"/v1/following/{alice.id}", headers=alice.headers)
        assert resp.status_code == 422
    assert counts(client, alice, alice) == (0, 0)


def test_following_an_unknown_user_is_404(client, signup):
    alice = signup()
    for method in ("PUT", "DELETE"):
        resp = client.simulate_request(method, "/v1/following/999999999999", headers=alice.headers)
        assert resp.status_code == 404
    assert counts(client, alice, alice) == (0, 0)


def test_mutual_follows_in_parallel_neither_deadlock_nor_miscount(client, signup):
    alice, bob = signup(), signup()
    errors = []

    def churn(me, other):
        for i in range(30):
            method = "PUT" if i % 2 == 0 else "DELETE"
            resp = client.simulate_request(method, f"/v1/following/{other.id}", headers=me.headers)
            if resp.status_code != 204:
                errors.append(resp.status_code)
        client.simulate_put(f"/v1/following/{other.id}", headers=me.headers)

    threads = [
        threading.Thread(target=churn, args=(alice, bob)),
        threading.Thread(target=churn, args=(bob, alice)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counts(client, alice, alice) == (1, 1)
    assert counts(client, bob, alice) == (1, 1)
