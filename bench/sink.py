"""Sink throughput: change events/s from Kafka into Cassandra through the actor pipeline.

A dedicated pipeline process (own topic prefix, own consumer group, port 18003) consumes
bursts of Debezium-shaped shard-create events produced by the benchmark to a fresh set of
topics. Each event's authors have ``sink_followers`` followers (written directly into
followers_by_user), so one event means 3 + F feed/index rows, as in production. The rate
is N / (time from starting the burst's production until the pipeline reports N more events
done, i.e. written and their offsets committable). The baseline writes the same rows for
another N shards with the driver alone: prepared statements, ``execute_concurrent``
(concurrency 64 like the writer), no Kafka, no actors, no fan-out reads.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime

from cassandra.concurrent import execute_concurrent
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from bench import seed
from bench.context import Ctx
from bench.env import SINK_PORT, events_done, wait_ready
from bench.figures import Figure
from bench.stats import median
from feedline import cassandra
from feedline import statements as st
from feedline.connector import heartbeat_topic, topic_names
from feedline.connector.topics import ensure_topics

BASE_ID = 900_000_000_000
CONCURRENCY = 64


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    env, z = ctx.env, ctx.sizes
    kafka = dataclasses.replace(
        env.settings.kafka,
        topic_prefix=f"benchsink{env.run_id}",
        group_id=f"feedline-benchsink-{env.run_id}",
        dlq_topic=f"benchsink{env.run_id}.dlq",
    )
    settings = dataclasses.replace(env.settings, kafka=kafka)
    ensure_topics(settings, timeout=60)
    cluster, session = cassandra.connect(settings.cassandra)
    authors = [BASE_ID + i for i in range(z.sink_authors)]
    followers = {
        a: [BASE_ID + 10_000_000 + i * 1000 + j for j in range(z.sink_followers)]
        for i, a in enumerate(authors)
    }
    for a, fs in followers.items():
        seed.write_followers(session, a, fs)
    proc = env.pipeline(
        "sink-pipeline",
        SINK_PORT,
        FEEDLINE_TOPIC_PREFIX=kafka.topic_prefix,
        FEEDLINE_KAFKA_GROUP=kafka.group_id,
        FEEDLINE_DLQ_TOPIC=kafka.dlq_topic,
    )
    burst = Burst(kafka.bootstrap, kafka.topic("shards"), authors)
    pipe_rates, base_rates = [], []
    try:
        proc.start()
        wait_ready(SINK_PORT, 5 * kafka.partitions)
        ctx.sampler.record_idle({"sink-pipeline": proc})
        _pipeline_burst(burst, 50, timeout=120)  # warm-up: connections, prepared statements
        prepared = {n: session.prepare(st.get(n).cql) for n in _ROW_STATEMENTS}
        for _ in range(z.repeats):
            base_rates.append(_baseline(session, prepared, burst, followers, z.sink_events))
            with ctx.sampler.phase("sink burst", {"sink-pipeline": proc}):
                pipe_rates.append(_pipeline_burst(burst, z.sink_events, timeout=600))
    finally:
        proc.stop()
        cluster.shutdown()
        env.drop_groups(kafka.group_id)
        # Only this run's own topics (the prefix is unique to the run), never the product's.
        topics = [*topic_names(settings), heartbeat_topic(settings)]
        assert all(kafka.topic_prefix in t for t in topics), topics
        AdminClient({"bootstrap.servers": kafka.bootstrap}).delete_topics(topics)
    value, base = median(pipe_rates), median(base_rates)
    rows = 3 + z.sink_followers
    fig = Figure(
        "sink.events_per_s",
        f"pipeline events/s (shard creates, {rows} rows each)",
        value,
        "events/s",
        base,
        "driver alone, execute_concurrent",
        "≥ 0.8x baseline",
    )
    fig.met = fig.ratio is not None and fig.ratio >= 0.8
    details = {
        "pipeline": pipe_rates,
        "baseline": base_rates,
        "events": z.sink_events,
        "rows_per_event": rows,
    }
    return [fig], details


_ROW_STATEMENTS = (st.UPSERT_SHARD, st.INSERT_AUTHOR_SHARD, st.INSERT_FEED_ITEM)


class Burst:
    """Produce Debezium-shaped shard creates with fresh ids and increasing LSNs."""

    def __init__(self, bootstrap: str, topic: str, authors: list[int]):
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self._topic = topic
        self._authors = authors
        self.next_id = BASE_ID + 1
        self.next_lsn = 10_000_000

    def take(self, n: int) -> list[tuple[int, int, int, datetime]]:
        """Reserve ``n`` (shard id, author, lsn, created_at) tuples."""
        now = datetime.now(UTC).replace(microsecond=0)
        out = []
        for i in range(n):
            sid = self.next_id + i
            out.append((sid, self._authors[sid % len(self._authors)], self.next_lsn + i, now))
        self.next_id += n
        self.next_lsn += n
        return out

    def produce(self, n: int) -> None:
        for sid, author, lsn, created in self.take(n):
            ms = int(created.timestamp() * 1000)
            row = {
                "id": sid,
                "author_id": author,
                "body": f"sink {sid}",
                "like_count": 0,
                "comment_count": 0,
                "created_at": created.isoformat().replace("+00:00", "Z"),
            }
            value = {
                "before": None,
                "after": row,
                "op": "c",
                "ts_ms": ms,
                "source": {"table": "shards", "lsn": lsn, "ts_ms": ms, "snapshot": "false"},
            }
            self._producer.produce(self._topic, json.dumps(value), json.dumps({"id": sid}))
            self._producer.poll(0)
        self._producer.flush(30)


def _pipeline_burst(burst: Burst, n: int, timeout: float) -> float:
    before = events_done(SINK_PORT)
    start = time.monotonic()
    burst.produce(n)
    while events_done(SINK_PORT) < before + n:
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"sink pipeline: {n} events not done in {timeout}s")
        time.sleep(0.05)
    return n / (time.monotonic() - start)


def _baseline(session, prepared, burst: Burst, followers: dict, n: int) -> float:
    """Write the rows of ``n`` shard creates with the driver alone; return events/s."""
    start = time.monotonic()
    shard, by_author, feed = (prepared[s] for s in _ROW_STATEMENTS)
    work = []
    for sid, author, lsn, created in burst.take(n):
        work.append((shard, (sid, author, f"sink {sid}", 0, 0, created, lsn)))
        work.append((by_author, (author, created, sid, lsn)))
        work.append((feed, (author, created, sid, author, lsn)))
        work.extend((feed, (f, created, sid, author, 1)) for f in followers[author])
    for ok, res in execute_concurrent(
        session, work, concurrency=CONCURRENCY, results_generator=True
    ):
        if not ok:
            raise res
    return n / (time.monotonic() - start)
