"""Describe the pipeline's supervision tree: who starts first, who restarts with whom.

    root (rest_for_one)
      +- cache          CacheInvalidator x N     (Redis)
      +- dead-letters   DeadLetters              (Kafka producer)
      +- writers        CassandraWriter x N      (Cassandra)
      +- adapters       Adapter x N              (strategies)
      +- consumers      KafkaConsumer + one PartitionConsumer per assigned partition

Children start in this order, each stage after the stages it sends to, and stop in
reverse. rest_for_one at the root: if a whole stage gives up, the stages after it (which
send to it) restart too. Stages find each other through Routers that look a child up by
name, so a restarted child's new ref is found without restarting its senders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pykka

from feedline.actors.adapter import Adapter
from feedline.actors.cache_invalidator import CacheInvalidator
from feedline.actors.cassandra_writer import CassandraWriter
from feedline.actors.dead_letters import DeadLetters
from feedline.actors.epoch import RestartEpoch
from feedline.actors.kafka_consumer import KafkaConsumer, partition_child_id
from feedline.actors.partition_consumer import PartitionConsumer
from feedline.actors.router import Router
from feedline.connector import TABLES as SOURCE_TABLES
from feedline.fanout import FeedTrims
from feedline.pipeline.metrics import PipelineMetrics
from feedline.settings import Settings
from feedline.strategies.factory import SchemaAdapterStrategyFactory
from feedline.supervisors import ChildSpec, Intensity, Strategy, Supervisor, WhichChild

# Stage supervisor -> (member name prefix, members). Two adapters and invalidators keep
# both cores busy; writers spend most of a flush waiting on Cassandra, so four overlap
# their round trips (freshness p50 at 200 writes/s: 0.47-0.60 s with two, 0.35 with four).
POOLS = {"cache": ("invalidator", 2), "writers": ("writer", 4), "adapters": ("adapter", 2)}


@dataclass
class RootHolder:
    """The root supervisor's ref, filled in once it exists, for routers' look-ups."""

    ref: Any = None


def build_root(
    settings: Settings, metrics: PipelineMetrics, epoch: RestartEpoch
) -> tuple[RootHolder, dict[str, Any]]:
    """Return the root holder and the root Supervisor's start kwargs."""
    holder = RootHolder()
    routers = {
        stage: Router([f"{prefix}-{i}" for i in range(n)], _lookup(holder, stage))
        for stage, (prefix, n) in POOLS.items()
    }
    routers["dead-letters"] = Router(["dead-letters-0"], _lookup(holder, "dead-letters"))
    pipeline = settings.pipeline

    def on_restart(_supervisor: str, child_id: str) -> None:
        """Count the restart and make partition owners re-send what it may have dropped."""
        metrics.restarts.labels(child_id).inc()
        epoch.bump()

    def pool(stage: str, actor: type, **kwargs: Any) -> ChildSpec:
        children = [ChildSpec(id=name, actor=actor, kwargs=kwargs) for name in routers[stage].names]
        return _supervisor_spec(stage, children, Strategy.ONE_FOR_ONE, on_restart)

    def partition_spec(topic: str, partition: int, consumer: Any) -> ChildSpec:
        return ChildSpec(
            id=partition_child_id(topic, partition),
            actor=PartitionConsumer,
            kwargs={
                "topic": topic,
                "partition": partition,
                "consumer": consumer,
                "adapters": routers["adapters"],
                "epoch": epoch,
                "metrics": metrics,
            },
        )

    consumer = ChildSpec(
        id="kafka-consumer",
        actor=KafkaConsumer,
        kwargs={
            "kafka": settings.kafka,
            "topics": [settings.kafka.topic(t) for t in SOURCE_TABLES],
            "partition_spec": partition_spec,
            "metrics": metrics,
            "max_in_flight": pipeline.max_in_flight_per_partition,
            "commit_interval_s": pipeline.commit_interval_s,
            "drain_timeout_s": pipeline.drain_timeout_s,
        },
        # Stopping it may drain (close() revokes): never abandon it mid-drain.
        shutdown=max(60.0, pipeline.drain_timeout_s + 30.0),
        start_timeout=30.0,
    )
    children = [
        pool("cache", CacheInvalidator, redis_url=settings.redis.url, metrics=metrics),
        _supervisor_spec(
            "dead-letters",
            [
                ChildSpec(
                    id="dead-letters-0",
                    actor=DeadLetters,
                    kwargs={
                        "bootstrap": settings.kafka.bootstrap,
                        "topic": settings.kafka.dlq_topic,
                        "metrics": metrics,
                    },
                )
            ],
            Strategy.ONE_FOR_ONE,
            on_restart,
        ),
        pool(
            "writers",
            CassandraWriter,
            cassandra_settings=settings.cassandra,
            pipeline=pipeline,
            invalidators=routers["cache"],
            metrics=metrics,
            feed_trims=FeedTrims.from_settings(pipeline),
        ),
        pool(
            "adapters",
            Adapter,
            factory=SchemaAdapterStrategyFactory(),
            writers=routers["writers"],
            dead_letters=routers["dead-letters"],
            metrics=metrics,
        ),
        _supervisor_spec("consumers", [consumer], Strategy.ONE_FOR_ONE, on_restart),
    ]
    root_kwargs = {
        "name": "root",
        "children": children,
        "strategy": Strategy.REST_FOR_ONE,
        "intensity": Intensity(max_restarts=5, period=60.0),
        "on_restart": on_restart,
    }
    return holder, root_kwargs


def _supervisor_spec(
    name: str, children: list[ChildSpec], strategy: Strategy, on_restart: Any
) -> ChildSpec:
    return ChildSpec(
        id=name,
        actor=Supervisor,
        kwargs={
            "name": name,
            "children": children,
            "strategy": strategy,
            "intensity": Intensity(max_restarts=10, period=30.0),
            "on_restart": on_restart,
        },
        shutdown=90.0,
        start_timeout=90.0,
    )


def _lookup(holder: RootHolder, stage: str) -> Any:
    """Return a look-up of a stage's child by name: root -> stage supervisor -> child."""

    def lookup(name: str) -> Any:
        if holder.ref is None:
            return None
        stage_ref = holder.ref.ask(WhichChild(stage), timeout=5.0)
        if stage_ref is None:
            return None
        return stage_ref.ask(WhichChild(name), timeout=5.0)

    return lookup


def start(settings: Settings, metrics: PipelineMetrics, epoch: RestartEpoch, **root: Any) -> Any:
    """Start the tree and return the root ref once every child is up."""
    holder, kwargs = build_root(settings, metrics, epoch)
    kwargs.update(root)
    holder.ref = Supervisor.start(**kwargs)
    holder.ref.ask(WhichChild("consumers"), timeout=300.0)  # answered after on_start
    if not holder.ref.is_alive():
        raise pykka.ActorDeadError("the pipeline tree failed to start (see log)")
    return holder.ref
