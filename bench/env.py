"""The benchmark's private corner of the local stack: ports, keyspace, Redis db, groups.

Benchmark servers never use the developer's ports (8000/8001) or consumer group. The
read model they build lives in its own keyspace (``feedline_bench``, recreated each run)
and the cache in its own Redis database, so a run neither reads nor disturbs the
developer's feeds. The bench pipeline's consumer group starts at the current end of the
CDC topics: it sees only what this run writes. PostgreSQL, Kafka and Debezium are shared
(they are the system under test); bench users get handles starting with ``b``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.procs import BenchProcess
from feedline import settings as settings_mod
from feedline.migrate import migrate_cassandra
from feedline.strategies.decode import KEYS

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KEYSPACE = "feedline_bench"
REDIS_DB = 7
DLQ_TOPIC = "feedline.bench.dlq"
logger = logging.getLogger("bench")
WEB_PORT, PIPELINE_PORT, CONST_PORT, SINK_PORT = 18000, 18001, 18002, 18003


def ops_port(port: int) -> int:
    """Return the ops listener's port of the bench gunicorn serving ``port``."""
    return port + 1000


REDIS_ONLY_PORT = 18004  # the web with its near cache off (reads bench baseline)
STREAM_PORT = 18005  # the stream process (live feeds over SSE, bench/stream.py)
# Rate limits (FEEDLINE_RATE_*) that the bench's API clients would trip; see child_env.
BENCH_RATES = ("POSTS", "COMMENTS", "LIKES", "FOLLOWS", "SIGNUP", "LOGIN", "FAILED_AUTH")


@dataclass
class BenchEnv:
    """Everything a benchmark needs to reach the stack and the bench processes."""

    quick: bool
    run_id: str = field(default_factory=lambda: _base36(int(time.time())))
    settings: settings_mod.Settings = field(default_factory=settings_mod.load)

    def __post_init__(self) -> None:
        s = self.settings
        redis_url = re.sub(r"/\d*$", f"/{REDIS_DB}", s.redis.url)
        self.settings = dataclasses.replace(
            s,
            cassandra=dataclasses.replace(s.cassandra, keyspace=KEYSPACE),
            redis=dataclasses.replace(s.redis, url=redis_url),
            kafka=dataclasses.replace(s.kafka, group_id=f"feedline-bench-{self.run_id}"),
        )
        self.work = s.stack.var_dir / "bench" / self.run_id
        self.work.mkdir(parents=True, exist_ok=True)

    # -- environment of child processes ------------------------------------------------

    def child_env(self, **extra: str) -> dict[str, str]:
        """The environment of a bench server: this run's keyspace, Redis db, group, ports."""
        s = self.settings
        env = dict(os.environ)
        env.update(
            FEEDLINE_CASSANDRA_KEYSPACE=KEYSPACE,
            FEEDLINE_REDIS_URL=s.redis.url,
            FEEDLINE_KAFKA_GROUP=s.kafka.group_id,
            FEEDLINE_DLQ_TOPIC=DLQ_TOPIC,
            FEEDLINE_PIPELINE_PORT=str(PIPELINE_PORT),
            FEEDLINE_PIPELINE_HEALTH_URL=f"http://127.0.0.1:{PIPELINE_PORT}",
            PYTHONPATH=str(ROOT),
        )
        # A few bench users write hundreds of times a second: far above any per-user limit.
        # The limiter still counts every write (its cost is in the figures), never refuses.
        env.update({f"FEEDLINE_RATE_{rule}": "1000000/minute" for rule in BENCH_RATES})
        env.update(extra)
        return env

    def gunicorn(self, name: str, app: str, port: int, **extra: str) -> BenchProcess:
        """gunicorn with the product's config file, on ``port``, serving ``app``; its ops
        listener (readiness, metrics) on ``ops_port(port)``."""
        metrics = self.work / f"metrics-{port}"
        env = self.child_env(
            FEEDLINE_WEB_PORT=str(port),
            FEEDLINE_OPS_PORT=str(ops_port(port)),
            FEEDLINE_METRICS_DIR=str(metrics),
            **extra,
        )
        argv = [str(BIN / "gunicorn"), "-c", "python:feedline.http.gunicorn_conf", app]
        return BenchProcess(name, argv, env, self.work / f"{name}.log", port)

    def pipeline(self, name: str, port: int, **extra: str) -> BenchProcess:
        env = self.child_env(FEEDLINE_PIPELINE_PORT=str(port), **extra)
        argv = [sys.executable, "-m", "feedline.pipeline"]
        return BenchProcess(name, argv, env, self.work / f"{name}.log", port)

    # -- stores ---------------------------------------------------------------------

    def reset_keyspace(self) -> None:
        """Drop and recreate the bench keyspace with the product's migrations."""
        from feedline.migrate import connect

        cluster, session = connect(self.settings.cassandra, timeout=60)
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=60)
        finally:
            cluster.shutdown()
        migrate_cassandra(self.settings.cassandra)

    def start_group_at_end(self, settings: settings_mod.Settings | None = None) -> None:
        """Commit the group's offsets at the log end of every CDC topic (a fresh group)."""
        kafka = (settings or self.settings).kafka
        consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": kafka.group_id})
        try:
            offsets = []
            meta = consumer.list_topics(timeout=10).topics
            for table in KEYS:
                topic = kafka.topic(table)
                for p in meta[topic].partitions if topic in meta else ():
                    _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    offsets.append(TopicPartition(topic, p, high))
            if offsets:
                consumer.commit(offsets=offsets, asynchronous=False)
        finally:
            consumer.close()

    def ensure_dlq(self) -> None:
        """Create the bench pipeline's dead-letter topic (topics are never auto-created).

        Without it a poison event (other suites publish some on the shared topics) cannot
        be dead-lettered, stays in flight, and backpressure stalls its partition.
        """
        admin = AdminClient({"bootstrap.servers": self.settings.kafka.bootstrap})
        if DLQ_TOPIC in admin.list_topics(timeout=10).topics:
            return
        topic = NewTopic(DLQ_TOPIC, self.settings.kafka.partitions, 1)
        for fut in admin.create_topics([topic]).values():
            with contextlib.suppress(KafkaException):  # created meanwhile
                fut.result()

    def drop_groups(self, *groups: str) -> None:
        admin = AdminClient({"bootstrap.servers": self.settings.kafka.bootstrap})
        for fut in admin.delete_consumer_groups(list(groups), request_timeout=10).values():
            with contextlib.suppress(Exception):  # a group that never joined: leave it
                fut.result()


def pipeline_metrics(port: int) -> dict[str, float]:
    """Scrape the pipeline's /metrics into {"name{labels}": value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def events_done(port: int) -> float:
    return pipeline_metrics(port).get("feedline_events_done_total", 0.0)


def assigned_partitions(port: int) -> int:
    """Count the PartitionConsumer actors in the live tree (one per assigned partition)."""
    url = f"http://127.0.0.1:{port}/health/actors"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return text.count('"id": "partition:')


def wait_ready(port: int, partitions: int, timeout: float = 60.0) -> None:
    """Wait until the pipeline runs a consumer actor for each of ``partitions``."""
    deadline = time.monotonic() + timeout
    while assigned_partitions(port) < partitions:
        if time.monotonic() > deadline:
            raise RuntimeError(f"pipeline on {port}: partitions not assigned in {timeout}s")
        time.sleep(0.3)


def wait_caught_up(port: int, timeout: float = 300.0, max_lag: int = 200) -> float:
    """Wait until the pipeline has drained what it received and lags by at most ``max_lag``.

    The CDC topics are shared: other writers (a developer, another test suite) may keep a
    trickle going, so "caught up" cannot mean lag 0. Returns the seconds waited; on
    timeout it logs and returns, and the benchmark measures with whatever backlog is left.
    """
    start = time.monotonic()
    calm, last = 0, None
    while time.monotonic() - start < timeout:
        m = pipeline_metrics(port)
        lag = sum(v for k, v in m.items() if k.startswith("feedline_consumer_lag{"))
        seen = sum(v for k, v in m.items() if k.startswith("feedline_events_total{"))
        # received - done never reaches 0 (tombstones are received, not "done"): require it
        # to stand still instead, i.e. nothing piling up in flight.
        backlog = seen - m.get("feedline_events_done_total", 0.0)
        calm = calm + 1 if lag <= max_lag and backlog == last else 0
        last = backlog
        if calm >= 2:
            return time.monotonic() - start
        time.sleep(1.1)
    logger.warning("pipeline on %d still busy after %.0fs; measuring anyway", port, timeout)
    return time.monotonic() - start


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"
