"""Bounded feeds on the real stack (issue 16, deliverable 2): the cap, the trim, the reads.

A pipeline process of its own runs with ``FEEDLINE_FEED_MAX=50`` (its own consumer group,
from the log end). A reader follows five authors, who post 10x the cap into the reader's
feed through the API. Then, looking at Cassandra directly:

- the feed partition holds the newest 50 rows, and at most 1.1x the cap (the trim waits
  for ``cap x FEEDLINE_FEED_TRIM_SLACK`` rows), its index only rows of those;
- the first page of the feed (the API's default page of 20, or all 50) reads no tombstone:
  CQL tracing reports the tombstones each read met; a read past the cap (the API's
  100-row cache window) meets the trims' range tombstones, a handful, where tombstones
  per row would be the 450 trimmed rows;
- a trimmed shard's create event replayed into Kafka does not bring its row back;
- ``feedline verify`` with the same cap reports nothing for the reader.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from bench import tombstones
from tests.integration.pipeline.conftest import (
    Pipeline,
    eventually,
    free_port,
    start_test_pipeline,
    stop_pipeline,
)
from tests.integration.pipeline.test_feed_index import _produce, _stored_past
from tests.integration.pipeline.test_pipeline import feed, follow, post

pytestmark = pytest.mark.integration

CAP = 50
AUTHORS = 5
GROUP = os.environ.get("FEEDLINE_TEST_GROUP", "feedline-test-pipeline") + "-bounded"
WARN_THRESHOLD = 1000  # Cassandra's tombstone_warn_threshold (the stack keeps the default)


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory, settings: Any) -> Iterator[Pipeline]:
    log = tmp_path_factory.mktemp("bounded") / "pipeline.log"
    running = start_test_pipeline(log, free_port(), GROUP, settings, FEEDLINE_FEED_MAX=str(CAP))
    try:
        yield running
    finally:
        code = stop_pipeline(running)
    assert code == 0, f"pipeline did not stop cleanly ({code}); see {log}"


def index_rows(session: Any, user_id: int) -> list[int]:
    rows = session.execute(
        "SELECT shard_id FROM feed_by_user_author WHERE user_id = %s", (user_id,)
    )
    return [r.shard_id for r in rows]


def tombstones_read(session: Any, user_id: int, limit: int) -> tuple[int, int]:
    """Read a feed's first ``limit`` rows as the web does (traced); return the rows read
    and the tombstones the replica reported for the read."""
    read = tombstones.feed_head(session, user_id, limit)
    return read.rows, read.tombstones


def run_verify(user_id: int) -> str:
    argv = [sys.executable, "-m", "feedline.cli", "verify", "--no-progress", "--wait", "60"]
    env = dict(os.environ, FEEDLINE_FEED_MAX=str(CAP))
    done = subprocess.run(
        [*argv, "--user", str(user_id)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_ten_times_the_cap_leaves_the_newest_rows_and_a_first_page_without_tombstones(
    bounded: Pipeline,
    client: Any,
    signup: Any,
    cassandra_session: Any,
    settings: Any,
    kafka_tail: Any,
) -> None:
    reader = signup()
    authors = [signup() for _ in range(AUTHORS)]
    for author in authors:
        follow(client, reader, author)
    shards_topic = kafka_tail(settings.kafka.topic("shards"))
    posted = [
        post(client, author, f"{author.handle} {i}")
        for i in range(10 * CAP // AUTHORS)
        for author in authors
    ]
    newest = sorted(posted, reverse=True)[:CAP]  # posted one after another: ids follow time

    def trimmed() -> None:
        rows = feed(cassandra_session, reader.id)
        assert rows[:CAP] == newest
        assert len(rows) <= 1.1 * CAP, len(rows)
        assert set(index_rows(cassandra_session, reader.id)) <= set(rows)

    eventually(trimmed, timeout=120, interval=1.0)
    held = len(feed(cassandra_session, reader.id))
    page = tombstones_read(cassandra_session, reader.id, 20)
    whole = tombstones_read(cassandra_session, reader.id, CAP)
    past = tombstones_read(cassandra_session, reader.id, 100)
    print(f"feed rows {held} (cap {CAP}); (rows, tombstones) read by the first 20: {page}, "
          f"the first {CAP}: {whole}, a 100-row window past the cap: {past}")  # fmt: skip
    assert page == (20, 0)
    assert whole == (CAP, 0)
    # Per-row deletes would leave 450 tombstones there; the range tombstones, a handful.
    assert past[0] == held and past[1] < (10 * CAP - CAP) // 10 < WARN_THRESHOLD

    # Replay the oldest shard's create (a rewind): its fan-out writes the reader's row at
    # the edge's LSN, which the trim's tombstone (at the feed's highest) shadows.
    oldest = min(posted)
    created = shards_topic.wait_for(
        lambda e: ((e.value or {}).get("after") or {}).get("id") == oldest
    )
    offset = _produce(settings, created)
    eventually(lambda: _stored_past(bounded, created.topic, created.partition, offset), 60)
    assert oldest not in feed(cassandra_session, reader.id)
    assert oldest not in index_rows(cassandra_session, reader.id)
    assert "verify: OK" in run_verify(reader.id)
