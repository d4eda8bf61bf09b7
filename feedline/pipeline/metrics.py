"""Prometheus metrics of the pipeline process, built on one registry passed to every actor.

A registry per PipelineMetrics (not the global default) keeps tests independent and makes
the dependency explicit, like every other one the actors receive at start.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from feedline.labelled import Children


class PipelineMetrics:
    """Counters, gauges and histograms that /metrics on the pipeline port exposes."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "feedline_events_total", "Change events received, by topic", ["topic"], registry=r
        )
        self.events_by_topic = Children(self.events)
        self.events_done = Counter(
            "feedline_events_done_total", "Change events fully processed", registry=r
        )
        self.batch_size = Histogram(
            "feedline_write_batch_events",
            "Events per Cassandra writer flush",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.write_latency = Histogram(
            "feedline_write_seconds",
            "Time to apply one writer flush to Cassandra",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.cassandra_retries = Counter(
            "feedline_cassandra_retries_total", "Cassandra write attempts retried", registry=r
        )
        self.redis_failures = Counter(
            "feedline_redis_failures_total",
            "Redis invalidations that failed and were deferred",
            registry=r,
        )
        self.dlq = Counter("feedline_dlq_total", "Events sent to the dead-letter topic", registry=r)
        self.dlq_failed = Counter(
            "feedline_dlq_failed_total",
            "Dead letters the DLQ topic refused (their events stay unacknowledged)",
            registry=r,
        )
        self.parked = Gauge(
            "feedline_parked_events",
            "Events past their retry budget, unacknowledged and retried slowly, by writer",
            ["actor"],
            registry=r,
        )
        self.parked_total = Counter(
            "feedline_events_parked_total",
            "Events that exhausted their retry budget and were parked",
            registry=r,
        )
        self.restarts = Counter(
            "feedline_actor_restarts_total", "Actor restarts by supervisors", ["actor"], registry=r
        )
        self.resent = Counter(
            "feedline_events_resent_total", "In-flight events handed out again", registry=r
        )
        self.lag = Gauge(
            "feedline_consumer_lag",
            "Messages behind the log end",
            ["topic", "partition"],
            registry=r,
        )
        self.committed = Gauge(
            "feedline_committed_offset", "Last stored offset", ["topic", "partition"], registry=r
        )
        self.paused = Gauge(
            "feedline_paused_partitions", "Partitions paused for backpressure", registry=r
        )
        # The group fenced this member (its session expired): its partitions' work in flight
        # is dropped and replayed by whoever gets them. Should stay 0 through a broker loss.
        self.partitions_lost = Counter(
            "feedline_partitions_lost", "Partitions lost to an expired group session", registry=r
        )
        # A pause can last milliseconds; the count shows it happened even between scrapes.
        self.pauses = Counter(
            "feedline_partition_pauses", "Times a partition was paused for backpressure", registry=r
        )
        # What the writers send, by read-model table: rows (mutations) and statements (a
        # batch of one partition's mutations is one statement). Cost per event = delta /
        # events_done (issue 17's figure; a pull author's post writes O(1) rows).
        self.rows_written = Counter(
            "feedline_rows_written",
            "Mutations written to Cassandra, by table",
            ["table"],
            registry=r,
        )
        self.rows_by_table = Children(self.rows_written)
        self.statements_sent = Counter(
            "feedline_cassandra_statements",
            "Statements (batches count once) sent to Cassandra",
            registry=r,
        )
        # The reads the fan-out programs send (fanout.Expander), by statement name: with
        # rows and statements, what the pipeline asks of Cassandra per event.
        self.cassandra_reads = Counter(
            "feedline_cassandra_reads",
            "Reads sent to Cassandra by the expansions and their re-validations, by statement",
            ["statement"],
            registry=r,
        )
        self.reads_by_statement = Children(self.cassandra_reads)
        self.dependency_up = Gauge(
            "feedline_dependency_up",
            "1 if the dependency answered lately",
            ["dependency"],
            registry=r,
        )
