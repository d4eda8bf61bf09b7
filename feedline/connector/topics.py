"""Create the CDC topics explicitly, before the connector, so their layout is deliberate.

Topics that Connect would auto-create get the broker default and no set retention.
The dead-letter topic is sized from the source topics: a dead letter is a source record
plus headers, so it must take the largest record any source topic takes, plus headroom.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from feedline.connector import TABLES, heartbeat_topic, topic_names
from feedline.errors import StackError
from feedline.settings import Settings

logger = logging.getLogger(__name__)

# A dead letter's headers: source topic, partition and offset, and the error (capped at
# DeadLetters.ERROR_MAX_BYTES = 2,000), with their names and record framing; well above.
DLQ_HEADROOM_BYTES = 16 * 1024


def ensure_topics(settings: Settings, timeout: float = 60.0, log: str | None = None) -> None:
    """Create missing topics, grow short ones, and set retention and min.insync.replicas;
    retry while Kafka starts (a topic of replication factor 3 waits for three brokers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _ensure(settings)
            return
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise StackError("kafka", f"cannot create topics: {exc}", log) from None
            time.sleep(0.5)


def _ensure(settings: Settings) -> None:
    kafka = settings.kafka
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    existing = admin.list_topics(timeout=5).topics
    # With acks=all, a write to a topic is acknowledged once min.insync.replicas have it.
    config = {"retention.ms": str(kafka.retention_ms),
              "min.insync.replicas": str(kafka.min_insync_replicas)}  # fmt: skip
    new = [
        NewTopic(t, kafka.partitions, kafka.replication_factor, config=config)
        for t in topic_names(settings)
        if t not in existing
    ]
    beat = heartbeat_topic(settings)
    if beat not in existing:
        new.append(NewTopic(beat, 1, kafka.replication_factor, config=config))
    for topic, fut in (admin.create_topics(new) if new else {}).items():
        fut.result()
        logger.info("created topic %s", topic)
    grow = [
        NewPartitions(t, kafka.partitions)
        for t in topic_names(settings)
        if t in existing and len(existing[t].partitions) < kafka.partitions
    ]
    for fut in (admin.create_partitions(grow) if grow else {}).values():
        fut.result()
    entries = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in config.items()
    ]
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=entries)
        for t in topic_names(settings)
        if t in existing
    ]
    for fut in (admin.incremental_alter_configs(resources) if resources else {}).values():
        fut.result()
    _size_dlq(admin, settings)


def _size_dlq(admin: AdminClient, settings: Settings) -> None:
    """Set the DLQ topic's max.message.bytes to the largest source topic's plus headroom."""
    sources = [ConfigResource(ConfigResource.Type.TOPIC, settings.kafka.topic(t)) for t in TABLES]
    largest = max(
        int(fut.result()["max.message.bytes"].value)
        for fut in admin.describe_configs(sources).values()
    )
    limit = str(largest + DLQ_HEADROOM_BYTES)
    entry = ConfigEntry("max.message.bytes", limit, incremental_operation=AlterConfigOpType.SET)
    dlq = ConfigResource(
        ConfigResource.Type.TOPIC, settings.kafka.dlq_topic, incremental_configs=[entry]
    )
    for fut in admin.incremental_alter_configs([dlq]).values():
        fut.result()
