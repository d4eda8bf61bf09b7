"""The CDC plumbing: Kafka topics for the source tables and the Debezium connector on Connect.

The connector's configuration is ``postgres.json`` beside this module (a template filled from
settings). Debezium logs in as the replication role (``FEEDLINE_PG_REPLICATION_USER``:
REPLICATION, SELECT on the published tables; see feedline/stack/postgres.py), never as the
owner or the application. Its password is not in the configuration: the worker resolves
``${env:FEEDLINE_PG_REPLICATION_PASSWORD}`` from its own environment, so the password is
never stored in Connect's config topic nor returned by its REST API.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from feedline.settings import Settings

# The source tables, in the order of their foreign keys.
TABLES = ("users", "followers", "shards", "comments", "likes")
TEMPLATE = Path(__file__).with_name("postgres.json")


def topic_names(settings: Settings) -> list[str]:
    """Every topic the pipeline reads or writes: one per source table, plus the DLQ."""
    return [settings.kafka.topic(t) for t in TABLES] + [settings.kafka.dlq_topic]


def heartbeat_topic(settings: Settings) -> str:
    """Debezium's heartbeat topic (one partition); created by us since auto-create is off."""
    return f"__debezium-heartbeat.{settings.kafka.topic_prefix}"


def config(settings: Settings) -> dict[str, str]:
    """Render the connector configuration from the template and settings."""
    pg, connect = settings.postgres, settings.connect
    text = string.Template(TEMPLATE.read_text()).substitute(
        pg_host=pg.host,
        pg_port=pg.port,
        pg_replication_user=pg.replication_user,
        pg_database=pg.database,
        topic_prefix=settings.kafka.topic_prefix,
        slot_name=connect.slot_name,
        publication_name=connect.publication_name,
        poll_interval_ms=connect.poll_interval_ms,
    )
    return json.loads(text)
