"""Start the test suites' consumer groups at the log end, so history is never replayed.

A stack that has been used holds any amount of history (a benchmark, imports, other
suites). The pipelines the suites start would replay all of it before the events their
tests make: minutes, and timeouts. Every test acts after its pipeline fixture is set up
and looks only at what it did itself (fresh users, and rows keyed by their ids), so
nothing a test needs lies before the log end at that moment: the group may start there.

Why commit offsets rather than ``auto.offset.reset=latest``: ``latest`` is resolved when
the consumer first fetches a partition, some time after the fixture returned, so an
event a test makes in between would be skipped. Offsets committed before the start are
exact: everything written after ``log_ends()`` was read is consumed.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from feedline.connector import TABLES as SOURCE_TABLES

logger = logging.getLogger(__name__)

TP = tuple[str, int]


def log_ends(settings: Any) -> dict[TP, int]:
    """Return the end offset of every CDC partition now."""
    probe = Consumer({"bootstrap.servers": settings.kafka.bootstrap, "group.id": "probe"})
    ends = {}
    try:
        for table in SOURCE_TABLES:
            topic = settings.kafka.topic(table)
            for p in range(settings.kafka.partitions):
                _, high = probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                ends[(topic, p)] = high
    finally:
        probe.close()
    return ends


def start_group_at_log_end(settings: Any, group: str) -> dict[TP, int] | None:
    """Commit ``group``'s offsets to the CDC topics' ends now; return those ends.

    Returns None, changing nothing, if the group has live members (e.g. the other suite's
    pipeline in the shared test group): they own its offsets, and a new member joining
    them starts where they are. Call it before starting a pipeline in ``group``.
    """
    ends = log_ends(settings)
    committer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        offsets = [TopicPartition(t, p, end) for (t, p), end in ends.items()]
        done = committer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        code = exc.args[0].code()
        if code in (KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
                    KafkaError.REBALANCE_IN_PROGRESS):  # fmt: skip
            logger.info("group %s has live members: left where it is", group)
            return None
        raise
    finally:
        committer.close()
    failed = [tp for tp in done or [] if tp.error is not None]
    assert not failed, f"could not move {group} to the log end: {failed}"
    return ends
