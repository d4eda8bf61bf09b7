"""A big fan-out does not hold up ordinary posts (issue 16, deliverable 3), on the real stack.

An author gets 20,000 followers written straight into ``followers_by_user`` (as the fan-out
bench seeds them: 20,000 follows through the API and CDC would take minutes and test
something else). Their post goes through the API, PostgreSQL, Debezium, Kafka and the
pipeline, whose writer expands it a page of followers per step. While that runs, an
ordinary author posts until one of its shards is on the big post's Kafka partition (so
on the same writer: the case a one-step fan-out blocks for its whole length); each must
reach its follower's feed while the big fan-out is still unfinished (how fast is the
benchmark's business: bench/head_of_line.py), and the big post's offset must not be
stored until its last step is written.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from cassandra.concurrent import execute_concurrent

from bench import seed
from feedline.strategies.decode import parse_timestamptz
from tests.integration.pipeline.conftest import ApiUser, Pipeline, eventually
from tests.integration.pipeline.test_pipeline import follow

pytestmark = pytest.mark.integration

FOLLOWERS = 20_000
SEEDED_BASE = 700_000_000_000  # far above any user id the database hands out
MAX_ORDINARY = 40  # posts until one lands on the big post's partition (6 partitions)
SHARDS_TOPIC = "feedline.public.shards"


def post(client: Any, user: ApiUser, body: str) -> tuple[int, Any]:
    resp = client.simulate_post("/v1/shards", json={"body": body}, headers=user.headers)
    assert resp.status_code == 201, resp.text
    return resp.json["id"], parse_timestamptz(resp.json["created_at"])


def has_row(session: Any, user_id: int, created: Any, shard_id: int) -> bool:
    rows = session.execute(
        "SELECT shard_id FROM feed_by_user WHERE user_id = %s AND created_at = %s"
        " AND shard_id = %s",
        (user_id, created, shard_id),
    )
    return rows.one() is not None


def stored_offset(pipeline: Pipeline, topic: str, partition: int) -> int | None:
    stats = pipeline.node("kafka-consumer")["stats"]
    for p in stats.get("partitions", []):
        if (p["topic"], p["partition"]) == (topic, partition):
            return max(p["stored_offset"] or 0, p["committed_offset"] or 0)
    return None


def test_an_ordinary_post_reaches_its_follower_while_a_20000_follower_fan_out_runs(
    pipeline: Pipeline, client: Any, signup: Any, cassandra_session: Any, kafka_tail: Any
) -> None:
    big, ordinary, reader = signup(), signup(), signup()
    follow(client, reader, ordinary)
    warm, warm_at = post(client, ordinary, "before")
    eventually(lambda: _assert(has_row(cassandra_session, reader.id, warm_at, warm)), 60)
    followers = [SEEDED_BASE + big.id * 100_000 + i for i in range(FOLLOWERS)]
    seed.write_followers(cassandra_session, big.id, followers)
    try:
        shards = kafka_tail(SHARDS_TOPIC)
        sid, created = post(client, big, "to twenty thousand")
        event = shards.wait_for(lambda e: e.value is not None and e.value["after"]["id"] == sid)
        # Once the fan-out has begun (followers are paged in id order) ...
        eventually(
            lambda: _assert(has_row(cassandra_session, followers[0], created, sid)), 60, 0.05
        )
        # ... ordinary posts until one is on the big post's partition (so on its writer
        # too: the hardest case), each timed from its 201 to its follower's feed ...
        sent: dict[int, tuple[Any, float]] = {}
        for i in range(MAX_ORDINARY):
            small, small_at = post(client, ordinary, f"ordinary {i}")
            sent[small] = (small_at, time.monotonic())
            mine = shards.wait_for(lambda e, s=small: e.value is not None
                                   and e.value["after"]["id"] == s)  # fmt: skip
            if mine.partition == event.partition:
                break
        else:
            pytest.fail(f"none of {MAX_ORDINARY} ordinary posts shared the big post's partition")
        took: dict[int, float] = {}

        def arrived() -> None:
            for s, (at, t0) in sent.items():
                if s not in took and has_row(cassandra_session, reader.id, at, s):
                    took[s] = time.monotonic() - t0
            assert len(took) == len(sent)

        eventually(arrived, timeout=60, interval=0.05)
        # ... all of them are in their follower's feed while the big one is not done, and
        # the big post's offset is not stored yet.
        assert not has_row(cassandra_session, followers[-1], created, sid), (
            f"the fan-out was over before the ordinary posts arrived ({took}): no overlap"
        )
        done = stored_offset(pipeline, SHARDS_TOPIC, event.partition)
        assert done is None or done <= event.offset, (done, event.offset)
        # How fast is the bench's business (bench/head_of_line.py); here only that they
        # overtook the big fan-out, which a one-step fan-out never lets them do.
        print(f"ordinary posts during the fan-out took {max(took.values()):.2f} s at most")

        def fanned_out() -> None:
            assert has_row(cassandra_session, followers[-1], created, sid)
            sample = followers[:: FOLLOWERS // 200]
            assert all(has_row(cassandra_session, f, created, sid) for f in sample)

        eventually(fanned_out, timeout=180, interval=0.5)
        eventually(
            lambda: _assert((stored_offset(pipeline, SHARDS_TOPIC, event.partition) or 0)
                            > event.offset), 30)  # fmt: skip
    finally:
        _clean(cassandra_session, big.id, followers)


def _assert(ok: bool) -> None:
    assert ok


def _clean(session: Any, author_id: int, followers: list[int]) -> None:
    """Drop the seeded followers and their feeds: users the database never had."""
    session.execute("DELETE FROM followers_by_user WHERE user_id = %s", (author_id,))
    for table in ("feed_by_user", "feed_by_user_author"):
        stmt = session.prepare(f"DELETE FROM {table} WHERE user_id = ?")  # noqa: S608
        execute_concurrent(session, [(stmt, (f,)) for f in followers], concurrency=64)
