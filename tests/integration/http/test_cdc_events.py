"""Each kind of write reaches Kafka as a Debezium change event with what downstream needs.

Runs on the real stack: PostgreSQL -> Debezium (pgoutput) -> Kafka topics
``feedline.public.<table>`` keyed by the row's primary key.
"""

from __future__ import annotations

import pytest

from feedline.connector import TABLES
from tests.integration.http.change_events import ChangeEvent, ChangeEvents

pytestmark = pytest.mark.integration


@pytest.fixture
def events(settings):
    consumer = ChangeEvents(settings.kafka, TABLES)
    yield consumer
    consumer.close()


def is_op(op: str, **fields):
    """Match an event of ``op`` whose row has all of ``fields``."""

    def match(event: ChangeEvent) -> bool:
        return event.op == op and all(event.row[k] == v for k, v in fields.items())

    return match


def has_source_position(event: ChangeEvent) -> None:
    """Downstream orders writes by the source's commit: LSN and time must be there."""
    source = event.value["source"]
    assert isinstance(source["lsn"], int)
    assert isinstance(source["ts_ms"], int)
    assert source["table"] == event.topic.rsplit(".", 1)[1]


def test_signup_is_a_users_create_without_credentials(client, signup, events):
    alice = signup()
    event = events.expect("users", is_op("c", id=alice.id))
    assert event.key == {"id": alice.id}
    assert event.row["handle"] == alice.handle
    assert event.row["follower_count"] == event.row["following_count"] == 0
    assert "created_at" in event.row
    assert alice.token not in str(event.value)
    has_source_position(event)


def test_shard_create_count_and_delete(client, signup, events):
    alice = signup()
    resp = client.simulate_post("/v1/shards", json={"body": "to kafka"}, headers=alice.headers)
    shard = resp.json
    created = events.expect("shards", is_op("c", id=shard["id"]))
    assert created.key == {"id": shard["id"]}
    assert created.row["author_id"] == alice.id
    assert created.row["body"] == "to kafka"
    assert created.row["like_count"] == created.row["comment_count"] == 0
    assert created.row["created_at"]
    has_source_position(created)
    counted = events.expect("users", is_op("u", id=alice.id, shard_count=1))
    assert counted.value["before"]["shard_count"] == 0

    client.simulate_delete(f"/v1/shards/{shard['id']}", headers=alice.headers)
    deleted = events.expect("shards", is_op("d", id=shard["id"]))
    # REPLICA IDENTITY FULL: the delete carries the whole row, author and time included.
    assert deleted.row["author_id"] == alice.id
    assert deleted.row["created_at"] == created.row["created_at"]
    assert deleted.value["after"] is None
    events.expect("shards", lambda e: e.value is None and e.key == {"id": shard["id"]})
    events.expect("users", is_op("u", id=alice.id, shard_count=0))


def test_like_unlike_and_count_updates(client, signup, events):
    alice, bob = signup(), signup()
    sid = client.simulate_post("/v1/shards", json={"body": "p"}, headers=alice.headers).json["id"]
    client.simulate_put(f"/v1/shards/{sid}/like", headers=bob.headers)
    like = events.expect("likes", is_op("c", shard_id=sid, user_id=bob.id))
    assert like.key == {"shard_id": sid, "user_id": bob.id}
    events.expect("shards", is_op("u", id=sid, like_count=1))

    client.simulate_delete(f"/v1/shards/{sid}/like", headers=bob.headers)
    unlike = events.expect("likes", is_op("d", shard_id=sid, user_id=bob.id))
    assert unlike.value["before"]["created_at"] == like.row["created_at"]
    events.expect("shards", is_op("u", id=sid, like_count=0))


def test_comment_and_its_count(client, signup, events):
    alice, bob = signup(), signup()
    sid = client.simulate_post("/v1/shards", json={"body": "p"}, headers=alice.headers).json["id"]
    resp = client.simulate_post(
        f"/v1/shards/{sid}/comments", json={"body": "hi"}, headers=bob.headers
    )
    cid = resp.json["id"]
    comment = events.expect("comments", is_op("c", id=cid))
    assert (comment.row["shard_id"], comment.row["author_id"]) == (sid, bob.id)
    assert comment.row["body"] == "hi"
    events.expect("shards", is_op("u", id=sid, comment_count=1))

    client.simulate_delete(f"/v1/shards/{sid}", headers=alice.headers)
    # The cascade deletes the comment too, with its shard id for the read model.
    gone = events.expect("comments", is_op("d", id=cid))
    assert gone.row["shard_id"] == sid


def test_follow_unfollow_and_both_counts(client, signup, events):
    alice, bob = signup(), signup()
    client.simulate_put(f"/v1/following/{bob.id}", headers=alice.headers)
    follow = events.expect("followers", is_op("c", follower_id=alice.id, followee_id=bob.id))
    assert follow.key == {"follower_id": alice.id, "followee_id": bob.id}
    events.expect("users", is_op("u", id=alice.id, following_count=1))
    events.expect("users", is_op("u", id=bob.id, follower_count=1))

    client.simulate_delete(f"/v1/following/{bob.id}", headers=alice.headers)
    events.expect("followers", is_op("d", follower_id=alice.id, followee_id=bob.id))
    events.expect("users", is_op("u", id=alice.id, following_count=0))
    events.expect("users", is_op("u", id=bob.id, follower_count=0))


def test_a_repeated_like_emits_no_second_event(client, signup, events):
    alice, bob = signup(), signup()
    sid = client.simulate_post("/v1/shards", json={"body": "p"}, headers=alice.headers).json["id"]
    for _ in range(2):
        client.simulate_put(f"/v1/shards/{sid}/like", headers=bob.headers)
    # A marker write after the repeat: once it is seen, everything before it has been too.
    client.simulate_post(f"/v1/shards/{sid}/comments", json={"body": "m"}, headers=bob.headers)
    events.expect("shards", is_op("u", id=sid, comment_count=1))
    events.expect("comments", is_op("c", shard_id=sid))
    likes = [e for e in events.seen("likes") if e.key == {"shard_id": sid, "user_id": bob.id}]
    updates = [e.row for e in events.seen("shards") if e.op == "u" and e.row["id"] == sid]
    assert len(likes) == 1
    # The shards partition is ordered: the like's count update, then the comment's; no other.
    assert [(u["like_count"], u["comment_count"]) for u in updates] == [(1, 0), (1, 1)]
