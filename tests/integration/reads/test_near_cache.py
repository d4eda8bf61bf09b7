"""The per-worker near cache against the real Redis: copies never outlive a change.

No test here waits for an invalidation to arrive before reading: the near cache drains
them before every lookup, so a change made (and acknowledged) before a read is seen by it.
The short sleeps only let a *setup* write's own invalidation arrive before a copy is kept.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import falcon.testing
import pytest

from feedline import cache_keys
from feedline import statements as st
from feedline.http.app import create_app
from feedline.http.deps import Deps
from feedline.readmodel.model import read_model
from feedline.readmodel.near_cache import MAX_DRAIN, NearCache
from tests.integration.reads.conftest import TS, fake_handle

pytestmark = pytest.mark.integration

SETTLE_S = 0.05


@pytest.fixture
def near(settings: Any) -> Iterator[NearCache]:
    cache = NearCache(settings.redis.url, size=100, pages=10, max_age_s=10.0, timeout_s=1.0)
    yield cache
    cache.close()


@pytest.fixture
def keys(redis_client: Any) -> Iterator[list[str]]:
    made = [f"{cache_keys.PREFIX}test-near:{secrets.token_hex(6)}:{i}" for i in range(3)]
    yield made
    redis_client.delete(*made)


def copied(near: NearCache, redis_client: Any, key: str, entry: bytes) -> None:
    """Put ``entry`` in Redis and in the near cache, as a read that fetched it would."""
    redis_client.set(key, entry)
    time.sleep(SETTLE_S)
    generation, _ = near.get([key])
    near.keep(generation, [key], [entry])
    assert near.get([key])[1] == [entry]


def test_a_deleted_key_is_gone_from_the_copy_on_the_next_lookup(near, keys, redis_client):
    copied(near, redis_client, keys[0], b"Vone")
    copied(near, redis_client, keys[1], b"N")
    redis_client.delete(keys[0])
    assert near.get(keys[:2])[1] == [None, b"N"]
    redis_client.set(keys[1], b"Vtwo")
    assert near.get(keys[:2])[1] == [None, None]


def test_a_value_fetched_before_a_change_is_not_kept(near, keys, redis_client):
    redis_client.set(keys[0], b"Vold")
    time.sleep(SETTLE_S)
    generation, found = near.get([keys[0]])
    assert found == [None]
    # The value was fetched (b"Vold"), then someone changed the key before it was kept.
    redis_client.set(keys[0], b"Vnew")
    time.sleep(SETTLE_S)
    near.keep(generation, [keys[0]], [b"Vold"])
    assert near.get([keys[0]])[1] == [None]


def test_leases_are_never_copied(near, keys, redis_client):
    redis_client.set(keys[0], b"Ltoken")
    time.sleep(SETTLE_S)
    generation, _ = near.get([keys[0]])
    near.keep(generation, [keys[0]], [b"Ltoken"])
    assert near.get([keys[0]])[1] == [None]


def test_a_derived_entry_goes_when_any_key_it_was_built_from_changes(near, keys, redis_client):
    for key in keys:
        redis_client.set(key, b"Vx")
    time.sleep(SETTLE_S)
    generation, _ = near.derived("page")
    near.keep_derived(generation, "page", b"rendered", keys)
    assert near.derived("page")[1] == b"rendered"
    redis_client.set(keys[2], b"Vy")
    assert near.derived("page")[1] is None


def test_entries_age_out(settings, keys, redis_client):
    near = NearCache(settings.redis.url, size=10, pages=10, max_age_s=0.1, timeout_s=1.0)
    try:
        copied(near, redis_client, keys[0], b"Vone")
        time.sleep(0.2)
        assert near.get([keys[0]])[1] == [None]
    finally:
        near.close()


def test_a_killed_tracking_connection_empties_the_copy(near, keys, redis_client):
    copied(near, redis_client, keys[0], b"Vone")
    old = near.client_id
    assert redis_client.client_kill_filter(_id=old) == 1
    # Not tracking: nothing is served from memory (reads go to Redis), then it starts afresh.
    assert near.get([keys[0]]) is None
    time.sleep(1.1)
    _, found = near.get([keys[0]])
    assert found == [None] and near.client_id not in (None, old)


def test_a_cached_feed_page_shows_a_change_on_the_very_next_read(
    settings, database, signup, seeder, redis_client, cassandra_session
):
    """The pipeline's path for a like: write Cassandra, then DEL the shard's key."""
    reads = read_model(settings, database)
    app = create_app(Deps(settings=settings, db=database, reads=reads))
    client = falcon.testing.TestClient(app)
    try:
        reader = signup()
        author = seeder.base - 1
        seeder.author(author, fake_handle())
        items = seeder.feed(reader.id, author, 5, datetime(2024, 4, 1))
        for _ in range(3):  # miss (fills Redis), hit (kept in memory), hit from memory
            page = client.simulate_get("/v1/feed", headers=reader.headers)
            assert page.status_code == 200
            time.sleep(SETTLE_S)
        assert reads.cache.near.derived(f"page:feed:{reader.id}:20:None")[1] == page.content
        created, shard_id = items[0]
        upsert = cassandra_session.prepare(st.get(st.UPSERT_SHARD).cql)
        row = (shard_id, author, f"seed {shard_id}", 7, 2, created, TS + 1)
        cassandra_session.execute(upsert, row)
        redis_client.delete(cache_keys.shard(shard_id))
        after = client.simulate_get("/v1/feed", headers=reader.headers).json["items"]
        item = next(i for i in after if i["id"] == shard_id)
        assert (item["like_count"], item["comment_count"]) == (7, 2)
    finally:
        reads.store.close()
        reads.cache.close()


def test_a_burst_of_invalidations_starts_afresh_instead_of_parsing_it(near, keys, redis_client):
    copied(near, redis_client, keys[0], b"Vone")
    old = near.client_id
    burst = [f"{keys[1]}:{i}" for i in range(MAX_DRAIN + 50)]
    for key in burst:  # one round trip each: Redis batches a turn's keys in one message
        redis_client.set(key, b"Vx", px=60_000)
    redis_client.delete(*burst)
    _, found = near.get([keys[0]])
    assert found == [None]  # everything dropped, not only the keys in the burst
    assert near.client_id not in (None, old)  # tracking again, on a fresh connection
    copied(near, redis_client, keys[0], b"Vtwo")
