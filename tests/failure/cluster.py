"""What the cluster suite asks of the replicated services: who leads, who coordinates,
who runs the task, and whether every replica is back (Kafka's ISR; Cassandra's hints
delivered, and a repair preview that finds nothing to stream)."""

from __future__ import annotations

from collections import Counter

from confluent_kafka.admin import AdminClient

from feedline.connector import register, topic_names
from feedline.errors import StackError
from feedline.settings import Settings
from feedline.stack.jvm import Cassandra

IN_SYNC = "Previewed data was in sync"


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka.bootstrap})


def busiest_leader(settings: Settings) -> int:
    """The broker (node id) that leads the most CDC partitions."""
    topics = _admin(settings).list_topics(timeout=10).topics
    leaders = Counter(
        p.leader for name in topic_names(settings) for p in topics[name].partitions.values()
    )
    return leaders.most_common(1)[0][0]


def coordinator(settings: Settings, group: str) -> int:
    """The broker (node id) that coordinates the consumer group ``group``."""
    admin = _admin(settings)  # held: the future never completes once its client is gone
    return admin.describe_consumer_groups([group])[group].result(timeout=10).coordinator.id


def under_replicated(settings: Settings) -> int:
    """Partitions of any topic (internal ones too) whose in-sync replicas are not all."""
    try:
        topics = _admin(settings).list_topics(timeout=5).topics
    except Exception:
        return -1  # no answer: not redundant yet
    return sum(
        len(p.isrs) < len(p.replicas) for t in topics.values() for p in t.partitions.values()
    )


def task_worker(settings: Settings) -> str | None:
    """``host:port`` of the worker that runs the connector's task, if it runs."""
    try:
        report = register.status(settings)
    except (OSError, ValueError):
        return None
    running = [t["worker_id"] for t in report.get("tasks", []) if t["state"] == "RUNNING"]
    return running[0] if running else None


def hints_pending_for(nodes: list[Cassandra], address: str) -> bool:
    """Whether any of ``nodes`` still holds hints (writes it missed) for ``address``."""
    for node in nodes:
        try:
            if address in node.nodetool("listpendinghints", timeout=60):
                return True
        except StackError:
            return True  # no answer: not known to be delivered
    return False


def repair_preview(node: Cassandra, keyspace: str) -> str:
    """What a full repair would stream (Merkle trees of every replica compared, nothing
    streamed): IN_SYNC, or the lines that say what differs."""
    out = node.nodetool("repair", "--preview", "-full", keyspace)
    if IN_SYNC in out:
        return IN_SYNC
    lines = [ln.split("] ", 1)[-1].strip() for ln in out.splitlines() if ln.strip()]
    found = [ln for ln in lines if "estimated" in ln.lower() or "mismatch" in ln.lower()]
    return " ".join(found) or (lines[-1] if lines else "no output")
