"""Messages exchanged by the pipeline's actors, as frozen dataclasses.

An event travels PartitionConsumer -> Adapter -> CassandraWriter -> CacheInvalidator and
its acknowledgement (``Done``) comes back to the PartitionConsumer that owns its offset.
Nothing is done until that ``Done`` arrives: any actor on the way may die and drop it,
and the PartitionConsumer then hands the event out again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from feedline.strategies.base import Plan


@dataclass(frozen=True)
class Record:
    """A Kafka message copied into plain data (confluent-kafka Messages are not shared)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Records:
    """Consumer -> PartitionConsumer: newly polled records of its partition, in order."""

    records: tuple[Record, ...]


@dataclass(frozen=True)
class AdaptBatch:
    """PartitionConsumer -> Adapter: records to turn into plans; ``owner`` gets the acks."""

    records: tuple[Record, ...]
    owner: Any  # pykka.ActorRef of the PartitionConsumer


@dataclass(frozen=True)
class Work:
    """One event's plan on its way to Cassandra and Redis, remembering whom to ack."""

    record: Record
    plan: Plan
    owner: Any


@dataclass(frozen=True)
class WriteBatch:
    """Adapter -> CassandraWriter: planned events to apply."""

    items: tuple[Work, ...]


@dataclass(frozen=True)
class InvalidateBatch:
    """CassandraWriter -> CacheInvalidator: keys to drop, then the events to acknowledge."""

    keys: frozenset[str]
    items: tuple[Work, ...]


@dataclass(frozen=True)
class DeadLetter:
    """Any stage -> DeadLetters: an event that cannot be processed, with the reason."""

    record: Record
    error: str
    owner: Any


@dataclass(frozen=True)
class Done:
    """Any last stage -> PartitionConsumer: these offsets are fully processed."""

    offsets: tuple[int, ...]


@dataclass(frozen=True)
class Progress:
    """PartitionConsumer -> KafkaConsumer: commit position and in-flight count."""

    topic: str
    partition: int
    committable: int | None
    in_flight: int
    received: int  # records received in total, so the consumer can count those in transit


@dataclass(frozen=True)
class PartitionStarted:
    """PartitionConsumer -> KafkaConsumer: a (re)started actor now owns this partition.

    ``incarnation`` grows with every PartitionConsumer built, so a late announcement by an
    older one (it started too slowly, was given up on and replaced) loses to the newer one.
    """

    topic: str
    partition: int
    ref: Any
    incarnation: int = 0


@dataclass(frozen=True)
class Drain:
    """KafkaConsumer -> PartitionConsumer: finish in-flight work and answer with the
    committable offset through ``reply`` (a pykka future), for a revoke or a shutdown."""

    reply: Any


@dataclass(frozen=True)
class Flush:
    """Writer to itself: flush the batch it deferred while other messages were queued."""


@dataclass(frozen=True)
class Tick:
    """Periodic nudge: report progress and re-send events a restart may have dropped."""


@dataclass(frozen=True)
class Poll:
    """KafkaConsumer -> itself: poll once more (keeps its inbox served between polls)."""


@dataclass(frozen=True)
class Shutdown:
    """Main thread -> KafkaConsumer: stop polling, drain, commit, close."""

    reply: Any = field(default=None)


@dataclass(frozen=True)
class InjectFailure:
    """Fault injection (only when enabled in settings): make the receiving actor crash."""

    reason: str = "injected failure"
