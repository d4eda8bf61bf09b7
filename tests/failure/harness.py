"""Run one fault under load and measure it: visibility, recovery time, replayed events.

A fault run: sign up fresh users, start the load, inject the fault, watch health and
metrics while it lasts, heal it, stop the load, then wait for ``verify`` (scoped to the
run's users) to report zero differences. Recovery time is measured from the moment the
fault is healed (the service is back) to that first clean verify.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from feedline.connector import TABLES as SOURCE_TABLES
from feedline.settings import Settings
from feedline.verify import verify_until_clean
from tests.failure.freshness import FreshnessProbe
from tests.failure.load import Load
from tests.failure.procs import Pipeline, Web, get

COUNTERS = (
    "feedline_events_total",
    "feedline_events_resent_total",
    "feedline_actor_restarts_total",
    "feedline_cassandra_retries_total",
    "feedline_redis_failures_total",
    "feedline_dlq_total",
    "feedline_partitions_lost_total",
)


class Monitor(threading.Thread):
    """Poll health and metrics every ``interval`` s; integrate counters over restarts."""

    def __init__(self, pipelines: list[Pipeline], web: Web, interval: float = 0.5):
        super().__init__(name="monitor", daemon=True)
        self.pipelines, self.web, self.interval = pipelines, web, interval
        self.observed: Counter[str] = Counter()
        self._last: dict[tuple[int, str], float] = {}
        self._base: dict[str, float] = Counter()
        self._pids: dict[int, int | None] = {}
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def totals(self) -> dict[str, float]:
        """Counter totals summed over pipelines and over their process restarts."""
        with self._lock:
            out = Counter(self._base)
            for (_, name), value in self._last.items():
                out[name] += value
            return dict(out)

    def sample(self) -> None:
        for i, p in enumerate(self.pipelines):
            pid = p.worker_pid()
            metrics = p.metrics()
            with self._lock:
                if pid != self._pids.get(i):  # a new process: its counters start at 0
                    for name in COUNTERS:
                        self._base[name] += self._last.pop((i, name), 0.0)
                    self._pids[i] = pid
                if metrics is not None:
                    for name in COUNTERS:
                        self._last[(i, name)] = metrics.get(name, 0.0)
            report = p.actors()
            if report is None:
                self.observed["pipeline: unreachable"] += 1
            for problem in (report or {}).get("problems", []):
                self.observed[f"pipeline: {problem}"] += 1
        status, body = get(self.web.ops_url + "/health/ready")
        if status != 200:
            failing = [n for n, c in (body or {}).get("checks", {}).items() if not c.get("ok")]
            self.observed[f"web /health {status}: {','.join(failing) or '?'} down"] += 1
        status, _ = get(self.web.ops_url + "/health/actors")
        if status != 200:
            self.observed[f"web /health/actors {status}"] += 1

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.sample()
            except Exception as exc:  # a probe must never kill the monitor
                self.observed[f"monitor error {type(exc).__name__}"] += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def saw(self, *words: str) -> bool:
        return any(all(w in o for w in words) for o in self.observed)


class CdcTail(threading.Thread):
    """Count change events appended to the CDC topics, and duplicates among them.

    A duplicate is a second event with the same topic, key, LSN and op: Debezium
    re-publishing a stretch of changes after a crash of Kafka Connect.
    """

    def __init__(self, settings: Settings):
        super().__init__(name="cdc-tail", daemon=True)
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap,
                                  "group.id": f"failure-tail-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False})  # fmt: skip
        assigned = []
        for table in SOURCE_TABLES:
            topic = settings.kafka.topic(table)
            meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                assigned.append(TopicPartition(topic, p, high))
        self.consumer.assign(assigned)
        self.messages = 0
        self.duplicates = 0
        self._seen: set[tuple[Any, ...]] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                for msg in self.consumer.consume(500, 0.2):
                    if msg.error():
                        continue
                    self.messages += 1
                    if msg.value() is None:
                        continue
                    value = json.loads(msg.value())
                    ident = (msg.topic(), msg.key(), value.get("source", {}).get("lsn"),
                             value.get("op"))  # fmt: skip
                    if ident in self._seen:
                        self.duplicates += 1
                    self._seen.add(ident)
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


@dataclass
class FaultResult:
    name: str
    recovery_s: float
    cdc_events: int
    cdc_duplicates: int
    consumed: int
    redelivered: int
    resent: int
    restarts: int
    cassandra_retries: int
    redis_failures: int
    dead_lettered: int
    partitions_lost: int
    requests: dict[str, int]
    cache_entries: int
    last_difference: str = ""
    observed: list[str] = field(default_factory=list)
    # With a freshness probe: its posts' API 201 -> visible in GET /v1/feed, over the run
    # and over the fault (inject -> healed), and its feed reads.
    freshness: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # what a test measured besides

    def line(self) -> str:
        r = self.requests
        return (
            f"{self.name:<22} recovery {self.recovery_s:6.1f} s | CDC events {self.cdc_events:5d}"
            f" (Debezium duplicates {self.cdc_duplicates}) | consumed {self.consumed:5d},"
            f" replayed {self.redelivered:4d}, resent {self.resent:4d} | restarts"
            f" {self.restarts}, cassandra retries {self.cassandra_retries}, redis failures"
            f" {self.redis_failures}, DLQ {self.dead_lettered}, partitions lost"
            f" {self.partitions_lost} | API writes {r['ok']}/"
            f"{r['requests']} ok, {r['failed']} failed, {r['reads']} reads | cache entries"
            f" checked {self.cache_entries} | seen: {self.seen()}"
            + (f" | last difference at {self.last_difference}" if self.last_difference else "")
            + (f" | freshness {self._fresh()}" if self.freshness else "")
            + "".join(f" | {k}: {v}" for k, v in self.notes.items())
        )

    def _fresh(self) -> str:
        f = self.freshness
        run, fault = f["run"], f["fault"]
        return (
            f"p50 {run['p50']:.2f} s, p99 {run['p99']:.2f} s (during the fault p99"
            f" {fault['p99'] or 0:.2f} s, max {fault['max'] or 0:.2f} s, {fault['posts']} posts,"
            f" {run['not_seen']} never seen), feed reads {f['reads']} ({f['read_failures']} failed)"
        )

    def seen(self) -> str:
        """What health said while the fault lasted: one sample per kind of observation."""
        kinds: dict[str, str] = {}
        for text in self.observed:
            kinds.setdefault(text[:24], text[:70])
        return "; ".join(sorted(kinds.values())[:4]) or "nothing"


@dataclass
class FaultRun:
    """Everything one fault run needs; ``run`` does it and returns the measurements."""

    settings: Settings
    web: Web
    pipelines: list[Pipeline]
    users: int = 8
    warmup_s: float = 4.0
    cooldown_s: float = 4.0
    recovery_bound_s: float = 240.0
    rate_per_s: float = 25.0  # the load's writes and reads per second
    threads: int = 2
    max_ops: int = 2000
    freshness: bool = False  # also run a FreshnessProbe (tests/failure/freshness.py)

    def run(
        self,
        name: str,
        inject: Callable[[], None],
        heal: Callable[[], None],
        during: Callable[[Monitor], None] | None = None,
    ) -> tuple[FaultResult, Monitor, Load]:
        load = Load(self.web.url, rate_per_s=self.rate_per_s, threads=self.threads,
                    max_ops=self.max_ops)  # fmt: skip
        load.signup(self.users)
        probe = FreshnessProbe(self.web.url) if self.freshness else None
        if probe is not None:
            probe.prepare()
            probe.start()
        monitor = Monitor(self.pipelines, self.web)
        monitor.sample()
        before = monitor.totals()
        tail = CdcTail(self.settings)
        tail.start()
        monitor.start()
        load.start()
        try:
            time.sleep(self.warmup_s)
            injected = time.monotonic()
            inject()
            try:
                if during is not None:
                    during(monitor)
            finally:
                heal()
            healed = time.monotonic()
            time.sleep(self.cooldown_s)
        finally:
            load.stop()
            if probe is not None:
                probe.stop()
        import redis

        cache = redis.Redis.from_url(self.settings.redis.url, socket_timeout=5)
        last_diff: list[str] = []

        def attempt(r: Any) -> None:
            if r.differences:
                last_diff[:] = [f"{time.monotonic() - healed:.1f}s {r.differences[0]}"[:160]]

        try:
            report = verify_until_clean(
                self.settings, load.user_ids, self.recovery_bound_s, interval_s=0.5,
                progress=False, redis_client=cache, on_attempt=attempt,
            )  # fmt: skip
            recovery = time.monotonic() - healed
            time.sleep(1.0)  # let the tail and the metrics see the last events
            monitor.sample()
        finally:
            cache.close()
            monitor.stop()
            tail.stop()
        assert report.clean, "\n".join([report.summary(), *map(str, report.differences[:50])])
        after = monitor.totals()
        delta = {k: int(after.get(k, 0) - before.get(k, 0)) for k in COUNTERS}
        consumed = delta["feedline_events_total"]
        result = FaultResult(
            name=name,
            recovery_s=recovery,
            cdc_events=tail.messages,
            cdc_duplicates=tail.duplicates,
            consumed=consumed,
            redelivered=max(0, consumed - tail.messages),
            resent=delta["feedline_events_resent_total"],
            restarts=delta["feedline_actor_restarts_total"],
            cassandra_retries=delta["feedline_cassandra_retries_total"],
            redis_failures=delta["feedline_redis_failures_total"],
            dead_lettered=delta["feedline_dlq_total"],
            partitions_lost=delta["feedline_partitions_lost_total"],
            requests=load.tally(),
            cache_entries=report.cache_entries,
            last_difference=last_diff[0] if last_diff else "",
            observed=sorted(monitor.observed),
        )
        if probe is not None:
            result.freshness = {
                "run": probe.summary(),
                "fault": probe.summary((injected, healed)),
                "reads": probe.reads,
                "read_failures": probe.read_failures,
                "post_failures": probe.post_failures,
            }
        return result, monitor, load
