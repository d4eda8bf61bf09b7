"""Deleting an account on the real stack leaves no trace of the user anywhere.

The story of the issue: sign up, log in from a second device, log the first one out,
delete the account from the second. The whole path: ``DELETE /v1/users/me`` ->
PostgreSQL (cascades; the count triggers take back what the user added to others' counts)
-> Debezium change events (every cascaded row, whole) -> Kafka -> the pipeline process ->
Cassandra; then ``feedline verify`` over everyone involved reports zero differences.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from feedline.connector import TABLES
from tests.integration.http.change_events import ChangeEvent, ChangeEvents
from tests.integration.http.conftest import PASSWORD
from tests.integration.pipeline.conftest import ApiUser, Pipeline, eventually

pytestmark = pytest.mark.integration


def call(client: Any, method: str, path: str, user: ApiUser, body: Any = None) -> Any:
    resp = client.simulate_request(method, path, headers=user.headers, json=body)
    assert resp.status_code in (201, 204), resp.text
    return resp.json


def rows(session: Any, table: str, column: str, key: int) -> list[Any]:
    cql = f"SELECT * FROM {table} WHERE {column} = %s"  # noqa: S608 (fixed identifiers)
    return list(session.execute(cql, (key,)))


def run_verify(settings: Any, users: list[int]) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "feedline.cli", "verify", "--no-progress", "--wait", "60"]
    for user_id in users:
        args += ["--user", str(user_id)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_deleted_account_leaves_no_trace_in_events_read_model_or_verify(
    pipeline: Pipeline, client: Any, signup: Any, cassandra_session: Any, settings: Any
) -> None:
    me, friend, fan = signup(), signup(), signup()
    theirs = call(client, "POST", "/v1/shards", friend, {"body": "friend's"})["id"]
    mine = [call(client, "POST", "/v1/shards", me, {"body": f"mine {i}"})["id"] for i in (1, 2)]
    call(client, "PUT", f"/v1/following/{friend.id}", me)  # my feed holds their shard
    call(client, "PUT", f"/v1/following/{me.id}", fan)  # their feed holds mine
    call(client, "PUT", f"/v1/shards/{theirs}/like", me)
    my_comment = call(client, "POST", f"/v1/shards/{theirs}/comments", me, {"body": "nice"})["id"]
    call(client, "PUT", f"/v1/shards/{mine[0]}/like", fan)
    fan_comment = call(client, "POST", f"/v1/shards/{mine[0]}/comments", fan, {"body": "hi"})["id"]
    everyone = [me.id, friend.id, fan.id]
    before = run_verify(settings, everyone)
    assert before.returncode == 0, before.stdout + before.stderr
    # Read through the API, so Redis holds windows that show the user (verify checks them).
    reads = {
        "feed": (fan, "/v1/feed", mine[::-1]),
        "followers": (friend, f"/v1/users/{friend.id}/followers", [me.id]),
        "comments": (friend, f"/v1/shards/{theirs}/comments", [my_comment]),
    }
    for user, path, ids in reads.values():
        assert [item["id"] for item in get(client, user, path)] == ids, path

    # A second device logs in; the first one logs out; the second deletes the account.
    login = {"handle": me.handle, "password": PASSWORD}
    second = client.simulate_post("/v1/sessions", json=login)
    assert second.status_code == 201, second.text
    device2 = {"Authorization": f"Bearer {second.json['token']}"}
    assert client.simulate_delete("/v1/sessions/current", headers=me.headers).status_code == 204
    assert client.simulate_get("/v1/feed", headers=me.headers).status_code == 401
    assert client.simulate_get("/v1/feed", headers=device2).status_code == 200

    events = ChangeEvents(settings.kafka, TABLES)
    try:
        assert client.simulate_delete("/v1/users/me", headers=device2).status_code == 204
        assert client.simulate_get("/v1/feed", headers=device2).status_code == 401
        deleted = {
            ("users", "id", me.id),
            *(("shards", "id", s) for s in mine),
            ("comments", "id", my_comment),
            ("comments", "id", fan_comment),
            ("likes", "user_id", me.id),
            ("likes", "user_id", fan.id),
            ("followers", "followee_id", friend.id),
            ("followers", "follower_id", fan.id),
        }
        for table, column, value in deleted:
            event = events.expect(table, _delete_of(column, value))
            # The whole row (REPLICA IDENTITY FULL): what the pipeline needs to find copies.
            assert None not in event.value["before"].values(), event.value["before"]
        # Counts on other users' rows come back down, in PostgreSQL's own change events.
        events.expect("shards", _update_of(theirs, like_count=0, comment_count=0))
        events.expect("users", _update_of(friend.id, follower_count=0))
        events.expect("users", _update_of(fan.id, following_count=0))
    finally:
        events.close()

    def no_trace() -> None:
        for table, column in [
            ("users_by_id", "user_id"),
            ("feed_by_user", "user_id"),
            ("shards_by_author", "author_id"),
            ("followers_by_user", "user_id"),
            ("following_by_user", "user_id"),
        ]:
            assert rows(cassandra_session, table, column, me.id) == [], table
        for shard in mine:
            for table in ("shards_by_id", "comments_by_shard", "likes_by_shard"):
                assert rows(cassandra_session, table, "shard_id", shard) == [], (table, shard)
        assert rows(cassandra_session, "feed_by_user", "user_id", fan.id) == []
        assert rows(cassandra_session, "following_by_user", "user_id", fan.id) == []
        assert rows(cassandra_session, "followers_by_user", "user_id", friend.id) == []
        assert rows(cassandra_session, "likes_by_shard", "shard_id", theirs) == []
        assert rows(cassandra_session, "comments_by_shard", "shard_id", theirs) == []
        [shard] = rows(cassandra_session, "shards_by_id", "shard_id", theirs)
        assert (shard.like_count, shard.comment_count) == (0, 0)
        counts = rows(cassandra_session, "users_by_id", "user_id", friend.id)[0]
        assert (counts.follower_count, counts.following_count) == (0, 0)

    eventually(no_trace, timeout=60)
    for user, path, _ in reads.values():
        eventually(lambda u=user, p=path: _assert_empty(get(client, u, p)), timeout=30)
    after = run_verify(settings, everyone)
    print(after.stdout)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "verify: OK, 0 differences" in after.stdout, after.stdout
    cached = re.search(r"(\d+) cache entries", after.stdout)
    assert cached is not None and int(cached.group(1)) > 0, after.stdout


def get(client: Any, user: ApiUser, path: str) -> list[dict[str, Any]]:
    resp = client.simulate_get(path, headers=user.headers)
    assert resp.status_code == 200, resp.text
    return resp.json["items"]


def _assert_empty(items: list[Any]) -> None:
    assert items == []


def _delete_of(column: str, value: int):
    def match(event: ChangeEvent) -> bool:
        return event.op == "d" and event.row[column] == value

    return match


def _update_of(row_id: int, **fields: int):
    def match(event: ChangeEvent) -> bool:
        row = event.row
        return (
            event.op == "u" and row["id"] == row_id and all(row[k] == v for k, v in fields.items())
        )

    return match
