"""Turn raw change records into plans with the strategy picked for their table.

Decoding and planning are pure and cheap; keeping them in their own actors takes the
JSON work off the KafkaConsumer's thread and lets several partitions adapt in parallel
with writes. An event that cannot be adapted is a poison event: it goes to the dead
letters with the reason, and the partition moves on.
"""

from __future__ import annotations

import logging
from typing import Any

from feedline.actors.messages import AdaptBatch, DeadLetter, Done, InjectFailure, Work, WriteBatch
from feedline.actors.router import Router, tell_quietly
from feedline.errors import AdaptError
from feedline.strategies.decode import decode
from feedline.strategies.factory import SchemaAdapterStrategyFactory
from feedline.supervisors import ChildLink, SupervisedActor

logger = logging.getLogger(__name__)


class Adapter(SupervisedActor):
    """Decode records, plan them, and pass the plans on to a writer."""

    def __init__(
        self,
        factory: SchemaAdapterStrategyFactory,
        writers: Router,
        dead_letters: Router,
        metrics: Any,
        *,
        link: ChildLink | None = None,
    ):
        super().__init__(link=link)
        self._factory = factory
        self._writers = writers
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._processed = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, AdaptBatch):
            self._adapt(message)
        elif isinstance(message, InjectFailure):
            raise RuntimeError(message.reason)
        return None

    def health(self) -> dict[str, Any]:
        return {"messages_processed": self._processed, "in_flight": self.actor_inbox.qsize()}

    def _adapt(self, batch: AdaptBatch) -> None:
        work: list[Work] = []
        skipped: list[int] = []
        for record in batch.records:
            self._processed += 1
            self._metrics.events_by_topic[record.topic].inc()
            try:
                event = decode(record.topic, record.key, record.value)
                if event is None:  # heartbeats and tombstones carry no work
                    skipped.append(record.offset)
                    continue
                plan = self._factory.for_table(event.table).plan(event)
            except AdaptError as exc:
                logger.warning(
                    "poison event %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc
                )
                self._dead_letters.tell(record.topic, DeadLetter(record, str(exc), batch.owner))
                continue
            if plan.empty:
                skipped.append(record.offset)
            else:
                work.append(Work(record, plan, batch.owner))
        if skipped:
            tell_quietly(batch.owner, Done(tuple(skipped)))
        if work:
            key = (batch.records[0].topic, batch.records[0].partition)
            self._writers.tell(key, WriteBatch(tuple(work)))
