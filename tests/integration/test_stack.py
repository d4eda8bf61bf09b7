"""The local stack works end to end: CDC into Kafka, topic layout, Cassandra, Redis, no-op up."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from feedline import migrate
from feedline.connector import TABLES, config, register, topic_names
from feedline.settings import ROOT
from feedline.stack import lifecycle
from feedline.stack.lifecycle import Stack
from tests.failure.procs import free_port

pytestmark = pytest.mark.integration


def test_inserted_row_arrives_as_change_event(pg_conn, kafka_tail, settings):
    tail = kafka_tail(settings.kafka.topic("users"))
    handle = f"stack_{secrets.token_hex(5)}"
    with pg_conn.cursor() as cur:
        cur.execute("INSERT INTO users (handle) VALUES (%s) RETURNING id", (handle,))
        (user_id,) = cur.fetchone()
    event = tail.wait_for(lambda e: bool(e.value) and e.value["after"]["handle"] == handle)
    assert event.key == {"id": user_id}
    assert event.value["op"] == "c"
    assert event.value["source"]["table"] == "users"
    assert "schema" not in event.value and "payload" not in event.value  # schemas disabled


def test_cdc_topics_have_configured_partitions_and_retention(settings):
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    meta = admin.list_topics(timeout=10).topics
    names = topic_names(settings)
    assert len(names) == len(TABLES) + 1
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in names]
    for res, fut in admin.describe_configs(resources).items():
        assert len(meta[res.name].partitions) == settings.kafka.partitions, res.name
        assert fut.result()["retention.ms"].value == str(settings.kafka.retention_ms), res.name
        isr = fut.result()["min.insync.replicas"].value
        assert isr == str(settings.kafka.min_insync_replicas), res.name


def test_connector_runs_with_the_repo_config(settings):
    assert register.state(settings) == "RUNNING"
    have = register._call(settings, "GET", f"{register.connector_path(settings)}/config")
    assert {k: have[k] for k in config(settings)} == config(settings)
    assert have["poll.interval.ms"] == str(settings.connect.poll_interval_ms)
    assert settings.postgres.password not in str(have)  # resolved by the worker from its env


def test_tools_reach_connect_through_any_live_worker(settings):
    """A dead worker first in FEEDLINE_CONNECT_URL: the next one answers for the group."""
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    def with_urls(*urls: str):
        connect = dataclasses.replace(settings.connect, urls=urls)
        return dataclasses.replace(settings, connect=connect)

    assert register.state(with_urls(dead, *settings.connect.urls)) == "RUNNING"
    assert register.state(with_urls(dead)) == "UNREACHABLE"


def test_postgres_migrations_recorded_and_publication_exact(pg_conn, settings):
    with pg_conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations")
        applied = {row[0] for row in cur.fetchall()}
        cur.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = %s",
            (settings.connect.publication_name,),
        )
        published = {row[0] for row in cur.fetchall()}
    assert {v for v, _ in migrate.versions("postgres", "sql")} <= applied
    assert published == set(TABLES)


def test_cassandra_answers_and_schema_exists(cassandra_session, settings):
    assert cassandra_session.execute("SELECT release_version FROM system.local").one()
    rows = cassandra_session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
        (settings.cassandra.keyspace,),
    )
    tables = {row.table_name for row in rows}
    expected = set()
    for _, path in migrate.versions("cassandra", "cql"):
        expected |= set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", path.read_text()))
    assert expected and expected | {"schema_migrations"} <= tables
    done = {r.version for r in cassandra_session.execute("SELECT version FROM schema_migrations")}
    assert {v for v, _ in migrate.versions("cassandra", "cql")} <= done


def test_every_jvm_thread_runs_with_the_configured_timer_slack(settings):
    """Threads made long after start (request workers) have it too, not just the first."""
    want = settings.stack.jvm_timer_slack_us * 1000
    assert want > 0
    stack = Stack.of(settings)
    for node in [*stack.cassandra, *stack.kafka, *stack.connect]:
        pid = node.pid()
        assert pid is not None, f"{node.name} is not running"
        slacks = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # it ended
                    slacks[tid] = int(Path(f"/proc/{tid}/timerslack_ns").read_text())
            except PermissionError:
                pytest.skip("reading another process's timer slack needs CAP_SYS_NICE")
        assert len(slacks) > 20, slacks  # a JVM's many threads, not only its main one
        assert set(slacks.values()) == {want}, f"{node.name}: {slacks}"


def test_migrate_again_applies_nothing(settings):
    assert migrate.migrate(settings) == []


def test_redis_answers(redis_client):
    key = f"test:stack:{secrets.token_hex(4)}"
    assert redis_client.ping()
    redis_client.set(key, "1", ex=10)
    assert redis_client.get(key) == b"1"


def test_stack_up_twice_is_a_fast_noop(settings):
    before = {s.name: s.pid() for s in lifecycle.services(settings)}
    assert all(before.values()), before
    t0 = time.monotonic()
    out = subprocess.run(
        ["make", "-s", "stack-up"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    assert "started nothing" in out.stdout
    assert {s.name: s.pid() for s in lifecycle.services(settings)} == before
    assert elapsed < 15, f"no-op stack-up took {elapsed:.1f} s"
