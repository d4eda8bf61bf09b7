"""``feedline rebuild`` repairs a damaged read model while the pipeline and a load run.

Damage is made the way real loss looks in the LSN domain: rows deleted, or written stale,
just above their own write timestamp (a lost or misapplied event), never with the server
clock (which would beat every LSN for good and no rebuild could undo it).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from feedline.rebuild import rebuild
from feedline.verify import verify
from tests.failure.load import Load
from tests.failure.procs import Web

pytestmark = [pytest.mark.failure, pytest.mark.integration]


def damage(session: Any, user_id: int) -> None:
    rows = list(session.execute(
        "SELECT created_at, shard_id, writetime(author_id) AS wt FROM feed_by_user "
        "WHERE user_id = %s", (user_id,)))  # fmt: skip
    assert rows, "the user's feed is empty: nothing to damage"
    for r in rows[:3]:
        session.execute(
            "DELETE FROM feed_by_user USING TIMESTAMP %s WHERE user_id = %s AND created_at = %s"
            " AND shard_id = %s", (r.wt + 1, user_id, r.created_at, r.shard_id))  # fmt: skip
    session.execute(  # an extra row, written long ago
        "INSERT INTO feed_by_user (user_id, created_at, shard_id, author_id) VALUES (%s, %s, %s,"
        " %s) USING TIMESTAMP 1",
        (user_id, rows[0].created_at, 999_999_999_999, user_id),
    )
    wt = (
        session.execute(
            "SELECT writetime(follower_count) AS wt FROM users_by_id WHERE user_id = %s", (user_id,)
        )
        .one()
        .wt
    )
    session.execute(
        "INSERT INTO users_by_id (user_id, follower_count) VALUES (%s, %s) USING TIMESTAMP %s",
        (user_id, 12345, wt + 1),
    )


def test_rebuild_repairs_missing_extra_and_stale_rows_under_load(
    settings: Any, web: Web, fresh_cassandra: Any
):
    load = Load(web.url, rate_per_s=20)
    load.signup(6)
    for _ in range(60):
        load.step()
    target = max(load.user_ids, key=lambda u: sum(1 for a in load.shards.values() if a == u))
    deadline = time.monotonic() + 60
    while not verify(settings, load.user_ids, progress=False).clean:
        assert time.monotonic() < deadline, "the pipeline never caught up"
        time.sleep(0.5)
    session = fresh_cassandra()
    damage(session, target)
    found = verify(settings, [target], progress=False)
    assert found.counts()["missing"] >= 1 and found.counts()["extra"] == 1
    assert found.counts()["stale"] == 1, [str(d) for d in found.differences]
    load.start()
    try:
        report = rebuild(settings, load.user_ids, progress=False)
        assert report.written > 0 and report.deleted >= 1
    finally:
        load.stop()
    deadline = time.monotonic() + 60
    while not (result := verify(settings, load.user_ids, progress=False)).clean:
        assert time.monotonic() < deadline, [str(d) for d in result.differences[:20]]
        time.sleep(0.5)
