"""The actor pipeline on the real stack: API writes reach Cassandra's read model.

Each test acts through the HTTP API (PostgreSQL -> Debezium -> Kafka), then waits for the
pipeline process to apply the change to Cassandra, and checks the read model exactly.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.integration.pipeline.conftest import ApiUser, Pipeline, eventually

pytestmark = pytest.mark.integration


def feed(cassandra_session: Any, user_id: int) -> list[int]:
    rows = cassandra_session.execute(
        "SELECT shard_id FROM feed_by_user WHERE user_id = %s", (user_id,)
    )
    return [r.shard_id for r in rows]


def post(client: Any, user: ApiUser, body: str = "hello") -> int:
    resp = client.simulate_post("/v1/shards", json={"body": body}, headers=user.headers)
    assert resp.status_code == 201, resp.text
    return resp.json["id"]


def follow(client: Any, follower: ApiUser, followee: ApiUser, on: bool = True) -> None:
    method = client.simulate_put if on else client.simulate_delete
    resp = method(f"/v1/following/{followee.id}", headers=follower.headers)
    assert resp.status_code == 204, resp.text


def test_new_shard_reaches_the_author_and_every_follower(
    pipeline: Pipeline, client: Any, signup: Any, cassandra_session: Any
) -> None:
    author = signup()
    followers = [signup() for _ in range(3)]
    for f in followers:
        follow(client, f, author)
    shard = post(client, author)

    def everywhere() -> None:
        for user in [author, *followers]:
            assert feed(cassandra_session, user.id) == [shard], user

    eventually(everywhere)


def test_follow_backfills_and_unfollow_removes(
    pipeline: Pipeline, client: Any, signup: Any, cassandra_session: Any
) -> None:
    author, reader = signup(), signup()
    shards = [post(client, author, f"s{i}") for i in range(3)]
    follow(client, reader, author)
    eventually(lambda: _assert_eq(feed(cassandra_session, reader.id), shards[::-1]))
    follow(client, reader, author, on=False)
    eventually(lambda: _assert_eq(feed(cassandra_session, reader.id), []))
    follow(client, reader, author)
    eventually(lambda: _assert_eq(feed(cassandra_session, reader.id), shards[::-1]))


def test_deleted_shard_leaves_every_feed_and_table(
    pipeline: Pipeline, client: Any, signup: Any, cassandra_session: Any
) -> None:
    author, reader = signup(), signup()
    follow(client, reader, author)
    keep, gone = post(client, author, "keep"), post(client, author, "gone")
    eventually(lambda: _assert_eq(feed(cassandra_session, reader.id), [gone, keep]))
    resp = client.simulate_delete(f"/v1/shards/{gone}", headers=author.headers)
    assert resp.status_code == 204

    def removed() -> None:
        assert feed(cassandra_session, reader.id) == [keep]
        assert feed(cassandra_session, author.id) == [keep]
        assert _one(cassandra_session, "SELECT * FROM shards_by_id WHERE shard_id=%s", gone) is None
        by_author = cassandra_session.execute(
            "SELECT shard_id FROM shards_by_author WHERE author_id=%s", (author.id,)
        )
        assert [r.shard_id for r in by_author] == [keep]

    eventually(removed)


def test_likes_and_comments_update_counts_and_lists(
    pipeline: Pipeline, client: Any, signup: Any, cassandra_session: Any
) -> None:
    author, fan = signup(), signup()
    shard = post(client, author)
    assert client.simulate_put(f"/v1/shards/{shard}/like", headers=fan.headers).status_code == 204
    resp = client.simulate_post(
        f"/v1/shards/{shard}/comments", json={"body": "nice"}, headers=fan.headers
    )
    assert resp.status_code == 201
    comment = resp.json["id"]

    def counted() -> None:
        row = _one(cassandra_session, "SELECT * FROM shards_by_id WHERE shard_id=%s", shard)
        assert row is not None and (row.like_count, row.comment_count) == (1, 1)
        like = _one(cassandra_session, "SELECT * FROM likes_by_shard WHERE shard_id=%s", shard)
        assert like is not None and like.user_id == fan.id
        c = _one(cassandra_session, "SELECT * FROM comments_by_shard WHERE shard_id=%s", shard)
        assert c is not None and (c.comment_id, c.body) == (comment, "nice")

    eventually(counted)
    unlike = client.simulate_delete(f"/v1/shards/{shard}/like", headers=fan.headers)
    assert unlike.status_code == 204

    def uncounted() -> None:
        row = _one(cassandra_session, "SELECT * FROM shards_by_id WHERE shard_id=%s", shard)
        assert row.like_count == 0
        likes = "SELECT * FROM likes_by_shard WHERE shard_id=%s"
        assert _one(cassandra_session, likes, shard) is None

    eventually(uncounted)


def test_crashed_actors_are_restarted_and_nothing_is_lost(
    pipeline: Pipeline, client: Any, signup: Any, cassandra_session: Any
) -> None:
    author, a, b = signup(), signup(), signup()
    follow(client, a, author)
    follow(client, b, author)
    before = {n: pipeline.node(n)["restarts"] for n in ("writer-0", "writer-1", "adapter-0")}
    posted: list[int] = []

    def write() -> None:
        for i in range(60):
            posted.append(post(client, author, f"load {i}"))

    writer = threading.Thread(target=write)
    writer.start()
    eventually(lambda: _assert_eq(len(posted) >= 20, True), interval=0.01)  # mid-stream
    for name in ("writer-0", "adapter-0", "writer-1"):
        pipeline.fail(name)
    writer.join()

    def complete() -> None:
        for user in (author, a, b):
            assert sorted(feed(cassandra_session, user.id)) == sorted(posted)

    eventually(complete, timeout=60)

    def restarted() -> None:
        metrics = pipeline.get("/metrics")
        for name, restarts in before.items():
            node = pipeline.node(name)
            assert node["state"] == "running"
            assert node["restarts"] >= restarts + 1, node
            assert "injected failure" in (node["last_error"] or "")
            assert f'feedline_actor_restarts_total{{actor="{name}"}}' in metrics

    eventually(restarted)


def test_poison_event_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
    pipeline: Pipeline,
    client: Any,
    signup: Any,
    cassandra_session: Any,
    settings: Any,
    kafka_tail: Any,
) -> None:
    marker = uuid.uuid4().hex
    dlq = kafka_tail(settings.kafka.dlq_topic)
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap})
    topic = settings.kafka.topic("shards")
    poison = json.dumps({"op": "c", "after": {"id": marker}, "marker": marker})
    for partition in range(settings.kafka.partitions):  # every partition must move on
        producer.produce(topic, key=b'{"id": 0}', value=poison.encode(), partition=partition)
    assert producer.flush(10) == 0

    letter = dlq.wait_for(lambda e: isinstance(e.value, dict) and e.value.get("marker") == marker)
    assert letter.key == {"id": 0}
    author = signup()
    shard = post(client, author)
    eventually(lambda: _assert_eq(feed(cassandra_session, author.id), [shard]))
    metrics = pipeline.get("/metrics")
    dead = [line for line in metrics.splitlines() if line.startswith("feedline_dlq_total")]
    assert dead and float(dead[0].split()[-1]) >= settings.kafka.partitions


def test_health_shows_the_tree_with_offsets_and_lag(pipeline: Pipeline) -> None:
    report = pipeline.get("/health/actors")
    assert report["status"] in ("ok", "degraded")
    ids = _ids(report["tree"])
    for expected in ("cache", "writers", "adapters", "consumers", "dead-letters", "kafka-consumer"):
        assert expected in ids
    assert any(i.startswith("partition:feedline.public.shards:") for i in ids)

    def consumer_partitions() -> list[dict[str, Any]]:
        stats = pipeline.node("kafka-consumer")["stats"]
        assert "partitions" in stats, "consumer busy"
        return stats["partitions"]

    partitions = eventually(consumer_partitions)
    assert {p["topic"] for p in partitions} >= {"feedline.public.shards", "feedline.public.users"}
    for p in partitions:
        assert {"committed_offset", "stored_offset", "lag", "in_flight", "paused"} <= set(p)
    assert "feedline_events_total" in pipeline.get("/metrics")


def _ids(node: dict[str, Any]) -> set[str]:
    found = {node["id"]} if "id" in node else set()
    for child in node.get("children", ()):
        found |= _ids(child)
    return found


def _one(session: Any, cql: str, *params: Any) -> Any:
    return session.execute(cql, params).one()


def _assert_eq(actual: Any, expected: Any) -> None:
    assert actual == expected


def test_ops_port_relays_the_actor_tree_and_says_when_the_pipeline_is_away(
    pipeline: Pipeline, settings: Any, database: Any
) -> None:
    import dataclasses

    import falcon.testing

    from feedline.http.app import create_ops_app
    from feedline.http.deps import Deps

    def client_for(url: str) -> Any:
        web = dataclasses.replace(settings.web, pipeline_health_url=url)
        app = create_ops_app(Deps(settings=dataclasses.replace(settings, web=web), db=database))
        return falcon.testing.TestClient(app)

    resp = client_for(pipeline.url).simulate_get("/health/actors")
    assert resp.status_code == 200
    assert "kafka-consumer" in _ids(resp.json["tree"])
    away = client_for("http://127.0.0.1:1").simulate_get("/health/actors")
    assert away.status_code == 503
    assert away.json["title"] == "Pipeline unreachable"
