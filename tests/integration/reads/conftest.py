"""Fixtures for the read-path tests: a pipeline process, an app, and a fast feed seeder.

The pipeline runs in the pipeline tests' consumer group on its own health port, so when
both suites run in one session the two processes simply share the partitions; alone, it
starts the group at the log end (tests/kafka_groups.py), never replaying history. Big feeds
are seeded straight into Cassandra with the strategies' own statements (feedline.statements),
with shard ids far above real ones; ``seeder`` deletes what it wrote afterwards.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from cassandra.cluster import NoHostAvailable
from cassandra.concurrent import execute_concurrent_with_args

from feedline import cache_keys
from feedline import statements as st
from tests.integration.http.conftest import (  # noqa: F401 - shared fixtures
    ApiUser,
    app,
    client,
    database,
    signup,
)
from tests.integration.pipeline.conftest import GROUP, Pipeline, start_pipeline, stop_pipeline
from tests.kafka_groups import start_group_at_log_end

HEALTH_PORT = 18061
TS = 1  # write timestamp of seeded rows: any real event (an LSN) wins over them


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory, settings: Any) -> Iterator[Pipeline]:
    log = tmp_path_factory.mktemp("reads-pipeline") / "pipeline.log"
    start_group_at_log_end(settings, GROUP)  # unless the pipeline tests' one runs in it
    running = start_pipeline(log, HEALTH_PORT, GROUP)
    yield running
    stop_pipeline(running)


class Seeder:
    """Write feed rows, shards and an author profile directly; remember them for cleanup."""

    def __init__(self, session: Any, redis_client: Any):
        self.session = session
        self.redis = redis_client
        self.prepared = {
            n: session.prepare(st.get(n).cql)
            for n in (st.UPSERT_SHARD, st.INSERT_FEED_ITEM, st.UPSERT_USER)
        }
        self.feeds: set[int] = set()
        self.shards: list[int] = []
        self.users: list[int] = []
        self.base = random.randrange(10**15, 9 * 10**15)

    def author(self, user_id: int, handle: str) -> None:
        values = (user_id, handle, 0, 0, 0, datetime(2020, 1, 1), TS)
        self.session.execute(self.prepared[st.UPSERT_USER], values)
        self.users.append(user_id)

    def feed(self, user_id: int, author_id: int, n: int, start: datetime) -> list[tuple]:
        """Give ``user_id`` n items (three per millisecond: ties broken by shard id)."""
        items = []
        for i in range(n):
            created = start + timedelta(milliseconds=i // 3)
            items.append((created, self.base + len(self.shards) + i))
        shards = [(sid, author_id, f"seed {sid}", 0, 0, c, TS) for c, sid in items]
        feed_rows = [(user_id, c, sid, author_id, TS) for c, sid in items]
        execute_concurrent_with_args(self.session, self.prepared[st.UPSERT_SHARD], shards, 100)
        execute_concurrent_with_args(
            self.session, self.prepared[st.INSERT_FEED_ITEM], feed_rows, 100
        )
        self.shards += [sid for _, sid in items]
        self.feeds.add(user_id)
        self.redis.delete(cache_keys.feed(user_id))  # what the pipeline's fan-out would do
        return items

    def cleanup(self) -> None:
        """Delete what was seeded (retrying while the session reconnects after an outage)."""
        deadline = time.monotonic() + 90
        while True:
            try:
                return self._delete()
            except NoHostAvailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def _delete(self) -> None:
        for user_id in self.feeds:
            self.session.execute("DELETE FROM feed_by_user WHERE user_id = %s", (user_id,))
        execute_concurrent_with_args(
            self.session,
            self.session.prepare("DELETE FROM shards_by_id WHERE shard_id = ?"),
            [(s,) for s in self.shards],
            100,
        )
        for user_id in self.users:
            self.session.execute("DELETE FROM users_by_id WHERE user_id = %s", (user_id,))
        keys = [cache_keys.feed(u) for u in self.feeds] + [cache_keys.shard(s) for s in self.shards]
        keys += [cache_keys.user(u) for u in self.users]
        for i in range(0, len(keys), 500):
            self.redis.delete(*keys[i : i + 500])


@pytest.fixture
def seeder(cassandra_session: Any, redis_client: Any) -> Iterator[Seeder]:
    s = Seeder(cassandra_session, redis_client)
    yield s
    s.cleanup()


def read_all(api: Any, user: ApiUser, path: str, limit: int | Callable[[int], int]) -> list:
    """Follow next_cursor to the end; return every item in the order served."""
    items, cursor, page = [], None, 0
    while True:
        n = limit(page) if callable(limit) else limit
        params = {"limit": n} | ({"cursor": cursor} if cursor else {})
        resp = api.simulate_get(path, params=params, headers=user.headers)
        assert resp.status_code == 200, resp.text
        items += resp.json["items"]
        cursor, page = resp.json["next_cursor"], page + 1
        if cursor is None:
            return items


def fake_handle() -> str:
    return f"seed_{secrets.token_hex(5)}"
