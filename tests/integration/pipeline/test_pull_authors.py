"""Hybrid fan-out on the real stack (issue 16, deliverable 1): an author crosses the pull
threshold both ways while followers follow, unfollow and like, concurrently.

A pipeline process of its own runs with ``FEEDLINE_PULL_THRESHOLD=3`` and
``FEEDLINE_PULL_HYSTERESIS=0.5`` (pull above 3 followers, push again below 1.5: at 1),
in its own consumer group from the log end; the feeds are read through an app built with
the same setting (its reads merge pull authors in). The author gains followers until they
are a settled pull author, posts, loses followers until push is settled again, posts,
and gains them back (pull), all amid a seeded random mix of follows, unfollows, likes and
posts sent by four threads at once. Then every follower's feed, paged two at a time
through the API, is exactly the feed PostgreSQL defines (own shards and followed authors'
shards, newest first), and ``feedline verify`` with the same setting reports nothing.

The pipeline, the reading app and verify use a keyspace and a Redis database of their
own: every pipeline decides modes (pull is on by default, at another threshold), and two
processes deciding one author's mode with different thresholds at the same LSN would
overwrite each other's decision (a tie that Cassandra settles by value). One deployment
has one threshold; here the suite's shared pipeline must not be a second deployment.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import falcon.testing
import pytest
import redis

from feedline.cassandra import connect
from feedline.http.app import create_app
from feedline.http.deps import Deps
from feedline.migrate import migrate_cassandra
from tests.integration.pipeline.conftest import (
    Pipeline,
    eventually,
    free_port,
    start_test_pipeline,
    stop_pipeline,
)
from tests.integration.pipeline.test_pipeline import follow, post
from tests.sse import LiveView, StreamProcess

pytestmark = pytest.mark.integration

THRESHOLD, HYSTERESIS = 3, 0.5
PULL_ENV = {"FEEDLINE_PULL_THRESHOLD": str(THRESHOLD), "FEEDLINE_PULL_HYSTERESIS": str(HYSTERESIS)}
GROUP = os.environ.get("FEEDLINE_TEST_GROUP", "feedline-test-pipeline") + "-pull"
REDIS_DB = 6


@pytest.fixture(scope="module")
def isolated(settings: Any) -> Any:
    """Return the settings of this test's own deployment: fresh keyspace, own Redis db."""
    cassandra = dataclasses.replace(
        settings.cassandra, keyspace=settings.cassandra.keyspace + "_pull"
    )
    redis_url = re.sub(r"/\d*$", f"/{REDIS_DB}", settings.redis.url)
    pipeline = dataclasses.replace(
        settings.pipeline, pull_threshold=THRESHOLD, pull_hysteresis=HYSTERESIS
    )
    own = dataclasses.replace(
        settings,
        cassandra=cassandra,
        redis=dataclasses.replace(settings.redis, url=redis_url),
        pipeline=pipeline,
    )
    cluster, session = connect(own.cassandra, use_keyspace=False)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {cassandra.keyspace}", timeout=120)
    finally:
        cluster.shutdown()
    migrate_cassandra(own.cassandra)
    redis.Redis.from_url(redis_url).flushdb()
    return own


def own_env(own: Any) -> dict[str, str]:
    return {
        **PULL_ENV,
        "FEEDLINE_CASSANDRA_KEYSPACE": own.cassandra.keyspace,
        "FEEDLINE_REDIS_URL": own.redis.url,
    }


@pytest.fixture(scope="module")
def pulling(tmp_path_factory: pytest.TempPathFactory, isolated: Any) -> Iterator[Pipeline]:
    log = tmp_path_factory.mktemp("pull") / "pipeline.log"
    running = start_test_pipeline(log, free_port(), GROUP, isolated, **own_env(isolated))
    try:
        yield running
    finally:
        code = stop_pipeline(running)
    assert code == 0, f"pipeline did not stop cleanly ({code}); see {log}"


@pytest.fixture(scope="module")
def reader(isolated: Any, database: Any) -> falcon.testing.TestClient:
    """Return a client of an app on this test's deployment (its reads merge pull authors)."""
    return falcon.testing.TestClient(create_app(Deps(settings=isolated, db=database)))


def mode(session: Any, keyspace: str, author_id: int) -> tuple[str, bool] | None:
    row = session.execute(
        f"SELECT target, target_lsn, settled_lsn FROM {keyspace}.author_mode"  # noqa: S608
        " WHERE author_id = %s",
        (author_id,),
    ).one()
    if row is None or row.target is None:
        return None
    return row.target, row.settled_lsn == row.target_lsn


def expected_feed(query: Any, user_id: int) -> list[int]:
    """Return the user's feed as PostgreSQL defines it (default window: 7 days, so every
    shard of a followed author here), newest first by (created_at in ms, id)."""
    rows = query(
        "SELECT s.id FROM shards s WHERE s.author_id = %s OR s.author_id IN "
        "(SELECT followee_id FROM followers WHERE follower_id = %s) "
        "ORDER BY date_trunc('milliseconds', s.created_at) DESC, s.id DESC",
        user_id,
        user_id,
    )
    return [r[0] for r in rows]


def api_feed(client: Any, user: Any, limit: int = 2) -> list[int]:
    """Page through the user's feed ``limit`` items at a time; return the shard ids."""
    ids: list[int] = []
    cursor = None
    for _ in range(200):
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        resp = client.simulate_get("/v1/feed", params=params, headers=user.headers)
        assert resp.status_code == 200, resp.text
        ids += [item["id"] for item in resp.json["items"]]
        cursor = resp.json["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("the feed did not end")


def like(client: Any, user: Any, shard_id: int) -> None:
    resp = client.simulate_put(f"/v1/shards/{shard_id}/like", headers=user.headers)
    assert resp.status_code in (200, 204), resp.text


def chaos(client: Any, author: Any, fans: list[Any], rnd: random.Random, n: int) -> None:
    """Send ``n`` random follows, unfollows, likes and posts from four threads at once."""
    shards = [post(client, author, "warm-up")]

    def act(i: int) -> None:
        fan = rnd.choice(fans)
        roll = rnd.random()
        if roll < 0.4:
            follow(client, fan, author, on=rnd.random() < 0.5)
        elif roll < 0.7:
            like(client, fan, rnd.choice(shards))
        else:
            shards.append(post(client, author, f"chaos {i}"))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(act, range(n)))


def set_followers(client: Any, author: Any, fans: list[Any], count: int) -> None:
    for i, fan in enumerate(fans):
        follow(client, fan, author, on=i < count)


def test_an_author_crossing_the_threshold_both_ways_amid_chaos_converges(
    pulling: Pipeline,
    isolated: Any,
    client: Any,
    reader: Any,
    signup: Any,
    cassandra_session: Any,
    query: Any,
) -> None:
    keyspace = isolated.cassandra.keyspace
    author = signup()
    fans = [signup() for _ in range(6)]
    rnd = random.Random(16)

    def settled(target: str) -> None:
        assert mode(cassandra_session, keyspace, author.id) == (target, True)

    set_followers(client, author, fans, 5)  # 5 > 3: pull
    chaos(client, author, fans, rnd, 30)
    set_followers(client, author, fans, 5)
    eventually(lambda: settled("pull"), timeout=120, interval=0.5)
    pulled = post(client, author, "while pull")
    set_followers(client, author, fans, 1)  # 1 < 1.5: push
    chaos(client, author, fans[:1], rnd, 10)
    eventually(lambda: settled("push"), timeout=120, interval=0.5)
    pushed = post(client, author, "while push")
    set_followers(client, author, fans, 6)  # pull again
    chaos(client, author, fans, rnd, 30)
    set_followers(client, author, fans, 6)
    eventually(lambda: settled("pull"), timeout=120, interval=0.5)
    last = post(client, author, "pull again")

    users = [author, *fans]

    def converged() -> None:
        for user in users:
            assert api_feed(reader, user) == expected_feed(query, user.id), user.id

    eventually(converged, timeout=120, interval=1.0)
    for fan in fans:  # every fan follows the author now: the posts of both modes are there
        assert {pulled, pushed, last} <= set(api_feed(reader, fan, limit=100))

    def listed() -> None:  # the author is in every fan's pull list
        for fan in fans:
            entry = cassandra_session.execute(
                f"SELECT author_id FROM {keyspace}.pull_following_by_user "  # noqa: S608
                "WHERE user_id = %s AND author_id = %s",
                (fan.id, author.id),
            ).one()
            assert entry is not None, fan.id

    eventually(listed, timeout=60, interval=0.5)

    argv = [sys.executable, "-m", "feedline.cli", "verify", "--no-progress", "--wait", "60"]
    env = dict(os.environ, **own_env(isolated))
    for user in users:
        argv += ["--user", str(user.id)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_pull_authors_posts_stream_to_their_readers(
    pulling: Pipeline,
    reader: Any,
    client: Any,
    signup: Any,
    isolated: Any,
    tmp_path: Any,
    cassandra_session: Any,
):
    """Issue 18: a pull author's post is in no follower's feed partition, yet it reaches
    their live stream (the stream re-reads the merged feed, as GET /v1/feed does)."""
    author = signup()
    fans = [signup() for _ in range(THRESHOLD + 1)]
    set_followers(client, author, fans, len(fans))
    keyspace = isolated.cassandra.keyspace
    eventually(lambda: _assert(mode(cassandra_session, keyspace, author.id) == ("pull", True)), 60)
    stream = StreamProcess(tmp_path / "stream.log", **own_env(isolated)).start()
    view = LiveView(stream.url + "/v1/feed/stream", fans[0].headers, limit=5).open()
    try:
        shard = post(client, author, "from a pull author")
        eventually(lambda: _assert(view.ordered() == [shard]), 30)
        assert api_feed(reader, fans[0], limit=5) == [shard]
        assert view.items[shard]["author_handle"] == author.handle
        resp = client.simulate_delete(f"/v1/shards/{shard}", headers=author.headers)
        assert resp.status_code == 204, resp.text
        eventually(lambda: _assert(view.ordered() == []), 30)
        assert ("delete", {"id": shard}) in view.events
        assert view.duplicates == []
    finally:
        view.close()
        stream.stop()


def _assert(condition: bool) -> None:
    assert condition
