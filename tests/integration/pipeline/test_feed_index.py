"""Follows, unfollows and shard deletes on the real stack: the backfill window and the index.

Issue 15, defects 4 and 5. Each test acts through the API (PostgreSQL -> Debezium -> Kafka
-> the pipeline process -> Cassandra) and then looks at Cassandra directly:

- an unfollow removes exactly the followee's rows from a feed full of other authors' rows,
  reading ``feed_by_user_author`` (not scanning the feed: a decoy row of the followee that
  only the feed holds survives the unfollow, where the old ``ALLOW FILTERING`` read found
  and deleted it);
- a shard older than a follow's window is not in that follower's feed, not even when its
  change event is replayed;
- a shard delete tombstones only feeds that hold the shard (probed by writing the row at a
  timestamp just below TERMINAL afterwards: it is visible only if no TERMINAL tombstone
  was written there);
- ``feedline verify`` (same window, same index) reports nothing for everyone involved.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer

from feedline.strategies.base import TERMINAL
from feedline.strategies.decode import parse_timestamptz
from tests.integration.pipeline.conftest import ApiUser, Pipeline, eventually
from tests.integration.pipeline.test_pipeline import feed, follow, post

pytestmark = pytest.mark.integration

DECOY_ID = 9_000_000_000_000  # far above any shard id the database hands out
PROBE_TS = TERMINAL // 2  # above every LSN, below TERMINAL


def index(session: Any, user_id: int, author_id: int) -> list[int]:
    rows = session.execute(
        "SELECT shard_id FROM feed_by_user_author WHERE user_id = %s AND author_id = %s",
        (user_id, author_id),
    )
    return [r.shard_id for r in rows]


def run_verify(users: list[int]) -> str:
    args = [sys.executable, "-m", "feedline.cli", "verify", "--no-progress", "--wait", "60"]
    for user_id in users:
        args += ["--user", str(user_id)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_unfollow_removes_exactly_the_followees_rows_found_through_the_index(
    pipeline: Pipeline, client: Any, signup: Any, cassandra_session: Any
) -> None:
    reader, target = signup(), signup()
    others = [signup() for _ in range(3)]
    theirs = {o.id: [post(client, o, f"{o.handle} {i}") for i in range(40)] for o in others}
    mine = [post(client, target, f"target {i}") for i in range(5)]
    for author in [target, *others]:
        follow(client, reader, author)
    everything = set(mine) | {s for shards in theirs.values() for s in shards}

    def followed() -> None:
        assert set(feed(cassandra_session, reader.id)) == everything
        assert sorted(index(cassandra_session, reader.id, target.id)) == sorted(mine)
        for o in others:
            assert sorted(index(cassandra_session, reader.id, o.id)) == sorted(theirs[o.id])

    eventually(followed, timeout=60)
    # A row of the followee that only the feed holds (the index does not): an unfollow
    # that scanned the feed for the followee's rows would find it and delete it.
    decoy_at = datetime.now(UTC) - timedelta(days=1)
    cassandra_session.execute(
        "INSERT INTO feed_by_user (user_id, created_at, shard_id, author_id) "
        "VALUES (%s, %s, %s, %s) USING TIMESTAMP 1",
        (reader.id, decoy_at, DECOY_ID, target.id),
    )
    try:
        follow(client, reader, target, on=False)
        rest = {s for shards in theirs.values() for s in shards}

        def unfollowed() -> None:
            assert set(feed(cassandra_session, reader.id)) == rest | {DECOY_ID}
            assert index(cassandra_session, reader.id, target.id) == []
            for o in others:
                assert sorted(index(cassandra_session, reader.id, o.id)) == sorted(theirs[o.id])

        eventually(unfollowed, timeout=60)
    finally:
        cassandra_session.execute(
            "DELETE FROM feed_by_user USING TIMESTAMP 2 "
            "WHERE user_id = %s AND created_at = %s AND shard_id = %s",
            (reader.id, decoy_at, DECOY_ID),
        )
    assert "verify: OK" in run_verify([reader.id, target.id, *(o.id for o in others)])


def test_old_shard_stays_out_of_a_later_follow_even_replayed_and_its_delete_is_not_blind(
    pipeline: Pipeline,
    client: Any,
    signup: Any,
    cassandra_session: Any,
    settings: Any,
    pg_conn: Any,
    kafka_tail: Any,
) -> None:
    author, reader = signup(), signup()
    window = timedelta(seconds=settings.pipeline.backfill_window_s)
    shards_topic = kafka_tail(settings.kafka.topic("shards"))
    old = _insert_shard(pg_conn, author, "from long ago", datetime.now(UTC) - window - timedelta(1))
    created = shards_topic.wait_for(lambda e: ((e.value or {}).get("after") or {}).get("id") == old)
    old_at = parse_timestamptz(created.value["after"]["created_at"])  # as the pipeline keys it
    recent = post(client, author, "recent")
    follow(client, reader, author)
    eventually(lambda: _eq(feed(cassandra_session, reader.id), [recent]), timeout=60)
    assert sorted(feed(cassandra_session, author.id)) == sorted([old, recent])
    assert index(cassandra_session, reader.id, author.id) == [recent]

    # Replay the old shard's create (a rewind, a group reset): same key, same value.
    offset = _produce(settings, created)
    eventually(lambda: _stored_past(pipeline, created.topic, created.partition, offset), 60)
    assert feed(cassandra_session, reader.id) == [recent]
    assert "verify: OK" in run_verify([author.id, reader.id])

    # Deleting the old shard: the reader's feed never held it, so no tombstone goes there.
    resp = client.simulate_delete(f"/v1/shards/{old}", headers=author.headers)
    assert resp.status_code == 204
    eventually(lambda: _eq(feed(cassandra_session, author.id), [recent]), timeout=60)
    probe = (reader.id, old_at, old)
    cassandra_session.execute(
        "INSERT INTO feed_by_user (user_id, created_at, shard_id, author_id) "
        "VALUES (%s, %s, %s, %s) USING TIMESTAMP %s",
        (*probe, author.id, PROBE_TS),
    )
    try:
        assert old in feed(cassandra_session, reader.id), "a TERMINAL tombstone was written"
    finally:
        cassandra_session.execute(
            "DELETE FROM feed_by_user USING TIMESTAMP %s "
            "WHERE user_id = %s AND created_at = %s AND shard_id = %s",
            (PROBE_TS + 1, *probe),
        )
    # Deleting the recent one removes the row the reader's feed holds, and its index row.
    resp = client.simulate_delete(f"/v1/shards/{recent}", headers=author.headers)
    assert resp.status_code == 204
    eventually(lambda: _eq(feed(cassandra_session, reader.id), []), timeout=60)
    assert index(cassandra_session, reader.id, author.id) == []
    assert "verify: OK" in run_verify([author.id, reader.id])


def _insert_shard(pg_conn: Any, author: ApiUser, body: str, created_at: datetime) -> int:
    """Insert a shard with a past created_at by SQL (the API always stamps now()); the
    database's trigger counts it on its author."""
    with pg_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO shards (author_id, body, created_at) VALUES (%s, %s, %s) RETURNING id",
            (author.id, body, created_at),
        )
        return cur.fetchone()[0]


def _produce(settings: Any, event: Any) -> int:
    """Produce ``event`` again, to its own partition; return the new message's offset."""
    offsets: list[int] = []
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap})
    producer.produce(
        event.topic,
        key=json.dumps(event.key).encode(),
        value=json.dumps(event.value).encode(),
        partition=event.partition,
        on_delivery=lambda err, msg: offsets.append(-1 if err else msg.offset()),
    )
    assert producer.flush(10) == 0
    assert offsets and offsets[0] >= 0, offsets
    return offsets[0]


def _stored_past(pipeline: Pipeline, topic: str, partition: int, offset: int) -> None:
    stats = pipeline.node("kafka-consumer")["stats"]
    assert "partitions" in stats, "consumer busy"
    [p] = [p for p in stats["partitions"] if (p["topic"], p["partition"]) == (topic, partition)]
    assert (p["stored_offset"] or 0) > offset, p


def _eq(actual: Any, expected: Any) -> None:
    assert actual == expected
