"""Sign-up, profiles and authentication against the real PostgreSQL."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from tests.integration.http.conftest import PASSWORD

pytestmark = pytest.mark.integration


def unique_handle() -> str:
    return f"t_{secrets.token_hex(6)}"


def test_signup_returns_id_handle_and_a_token_stored_only_as_a_hash(client, query):
    handle = unique_handle()
    resp = client.simulate_post("/v1/users", json={"handle": handle, "password": PASSWORD})
    assert resp.status_code == 201
    body = resp.json
    assert set(body) == {"id", "handle", "token", "expires_at"}
    assert body["handle"] == handle
    assert resp.headers["location"] == f"/v1/users/{body['id']}"
    stored = query("SELECT token_hash FROM user_tokens WHERE user_id = %s", body["id"])
    assert [bytes(row[0]) for row in stored] == [hashlib.sha256(body["token"].encode()).digest()]


def test_taken_handle_is_409_and_creates_nothing(client, signup, query):
    user = signup()
    resp = client.simulate_post("/v1/users", json={"handle": user.handle, "password": PASSWORD})
    assert resp.status_code == 409
    assert set(resp.json) == {"title", "description"}
    assert query("SELECT count(*) FROM users WHERE handle = %s", user.handle) == [(1,)]


@pytest.mark.parametrize("handle", ["ab", "UPPER", "has-dash", "x" * 31, "", 7, None])
def test_bad_handle_is_422(client, handle):
    resp = client.simulate_post("/v1/users", json={"handle": handle, "password": PASSWORD})
    assert resp.status_code == 422
    assert set(resp.json) == {"title", "description"}


def test_profile_has_counts(client, signup):
    user = signup()
    resp = client.simulate_get(f"/v1/users/{user.id}", headers=user.headers)
    assert resp.status_code == 200
    assert resp.json["handle"] == user.handle
    assert resp.json["follower_count"] == resp.json["following_count"] == 0
    assert resp.json["shard_count"] == 0
    assert resp.json["created_at"].endswith("+00:00")


@pytest.mark.parametrize(
    "raw_id", ["999999999999", "0", "-1", "abc", "1.5", "01", "1_0", str(2**63), "9" * 400]
)
def test_unknown_or_malformed_user_id_is_404(client, signup, raw_id):
    user = signup()
    resp = client.simulate_get(f"/v1/users/{raw_id}", headers=user.headers)
    assert resp.status_code == 404
    assert set(resp.json) == {"title", "description"}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-real-token-at-all-xxxxxxxx", "Basic dXNlcjpwYXNz", "garbage"],
)
def test_missing_or_bad_token_is_401_with_a_challenge(client, signup, header):
    user = signup()
    headers = {"Authorization": header} if header else {}
    resp = client.simulate_get(f"/v1/users/{user.id}", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert set(resp.json) == {"title", "description"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/following/1"),
        ("DELETE", "/v1/following/1"),
        ("POST", "/v1/shards"),
        ("GET", "/v1/shards/1"),
        ("DELETE", "/v1/shards/1"),
        ("POST", "/v1/shards/1/comments"),
        ("PUT", "/v1/shards/1/like"),
        ("DELETE", "/v1/shards/1/like"),
    ],
)
def test_every_v1_route_but_signup_needs_a_token(client, method, path):
    resp = client.simulate_request(method, path, json={"body": "x"})
    assert resp.status_code == 401


def test_unknown_route_is_json_404(client):
    resp = client.simulate_get("/v1/nope")
    assert resp.status_code == 404
    assert set(resp.json) == {"title", "description"}
