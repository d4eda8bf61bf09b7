"""A post's feed rows reach Cassandra in one request per ten feeds (issue 17), on the real stack.

Six followers, one post through the API; a pipeline of its own (own group, from the log
end, started once the follows are in the read model) carries the post and the author's
new shard count. Its counters say how many statements it sent: rows of partitions owned by
the same replicas share an UNLOGGED batch (feedline.cassandra.group_statements), so the
post's own rows, its six feed rows and the profile take about three requests. Sent a
partition at a time, as before, they took ten.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.pipeline.conftest import (
    GROUP,
    Pipeline,
    eventually,
    free_port,
    start_test_pipeline,
    stop_pipeline,
)
from tests.integration.pipeline.test_pipeline import feed, follow, post

pytestmark = pytest.mark.integration

FOLLOWERS = 6


def counters(running: Pipeline) -> dict[tuple[str, str], float]:
    """The pipeline's statements sent and rows written (by table), from /metrics."""
    out = {}
    for family in text_string_to_metric_families(running.get("/metrics")):
        for s in family.samples:
            if s.name == "feedline_cassandra_statements_total":
                out[("statements", "")] = s.value
            elif s.name == "feedline_rows_written_total":
                out[("rows", s.labels["table"])] = s.value
    return out


def test_a_posts_feed_rows_share_requests(
    pipeline: Pipeline, tmp_path: Any, settings: Any, client: Any, signup: Any,
    cassandra_session: Any,
) -> None:  # fmt: skip
    author = signup()
    followers = [signup() for _ in range(FOLLOWERS)]
    for f in followers:
        follow(client, f, author)
    post(client, author, "before")
    # Every event so far is applied (feeds, and the counts in the profiles), so the new
    # pipeline, which starts at the log end, carries the next post's events and no other.
    eventually(lambda: _settled(cassandra_session, author, followers), timeout=60)

    running = start_test_pipeline(tmp_path / "pipeline.log", free_port(), f"{GROUP}-batches",
                                  settings)  # fmt: skip
    try:
        before = counters(running)
        shard = post(client, author, "batched")

        def carried() -> dict[tuple[str, str], float]:
            now = counters(running)
            written = now.get(("rows", "feed_by_user"), 0) - before.get(("rows", "feed_by_user"), 0)
            users = now.get(("rows", "users_by_id"), 0) - before.get(("rows", "users_by_id"), 0)
            assert written == FOLLOWERS + 1 and users == 1, (written, users)  # + the author's own
            return now

        after = eventually(carried, timeout=60)
        assert all(shard in feed(cassandra_session, f.id) for f in followers)
    finally:
        stop_pipeline(running)
    sent = after[("statements", "")] - before.get(("statements", ""), 0)
    rows = sum(v - before.get(k, 0) for k, v in after.items() if k[0] == "rows")
    # shards_by_id, shards_by_author, the author's feed row, 6 feed rows and their index
    # rows, the author's profile: 16 rows; a statement per partition made 10 statements.
    assert rows == 16, rows
    assert sent <= 4, f"{sent} statements for {rows} rows"


def _settled(session: Any, author: Any, followers: list[Any]) -> None:
    for f in followers:
        assert len(feed(session, f.id)) == 1
        profile = session.execute(
            "SELECT following_count FROM users_by_id WHERE user_id = %s", (f.id,)
        ).one()
        assert profile is not None and profile.following_count == 1
    profile = session.execute(
        "SELECT follower_count, shard_count FROM users_by_id WHERE user_id = %s", (author.id,)
    ).one()
    assert profile is not None and (profile.follower_count, profile.shard_count) == (
        FOLLOWERS,
        1,
    )
