"""Watch for writes to become visible: in Cassandra (freshness) and on Kafka (capture).

``Prober`` polls the bench keyspace every 40 ms for each sampled write until the row it
should produce is there (or gone, for an unfollow); the freshness of a write is the time
from its API 2xx to the first poll that saw it, so it is over-estimated by at most one
poll. ``KafkaTail`` reads the product's CDC topics from their end and notes when each
row key first appears: 2xx -> on Kafka is Debezium's share (capture), the baseline the
pipeline's share is judged against.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from cassandra.concurrent import execute_concurrent
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from feedline.strategies.decode import KEYS

POLL_S = 0.04
TIMEOUT_S = 10.0
CONCURRENCY = 64

Key = tuple[str, tuple[int, ...]]


@dataclass
class Probe:
    kind: str
    statement: Any
    params: tuple
    want_present: bool
    key: Key
    ok_at: float  # monotonic time of the API's 2xx
    seen_at: float | None = None
    timed_out: bool = False


class Prober:
    def __init__(self, session: Any):
        self._session = session
        self._new: queue.Queue[Probe] = queue.Queue()
        self._pending: list[Probe] = []
        self._done: list[Probe] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="prober", daemon=True)
        self._thread.start()

    def add(self, probe: Probe) -> None:
        self._new.put(probe)

    def take(self) -> list[Probe]:
        with self._lock:
            done, self._done = self._done, []
        return done

    def drain(self, timeout: float = TIMEOUT_S + 5) -> None:
        deadline = time.monotonic() + timeout
        while (not self._new.empty() or self._pending) and time.monotonic() < deadline:
            time.sleep(POLL_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            while not self._new.empty():
                self._pending.append(self._new.get())
            if self._pending:
                futures = [
                    (p, self._session.execute_async(p.statement, p.params)) for p in self._pending
                ]
                still = []
                for p, fut in futures:
                    try:
                        present = bool(fut.result().one())
                    except Exception:
                        present = not p.want_present  # an error is "not yet"
                    now = time.monotonic()
                    if present == p.want_present:
                        p.seen_at = now
                    elif now - p.ok_at > TIMEOUT_S:
                        p.timed_out = True
                    else:
                        still.append(p)
                        continue
                    with self._lock:
                        self._done.append(p)
                self._pending = still
            time.sleep(POLL_S)


def in_every_feed(session: Any, check: Any, users: list[int], created: Any, sid: int) -> bool:
    """Tell whether every one of ``users`` has the shard's row in feed_by_user.

    ``check`` is the prepared ``SELECT shard_id FROM feed_by_user WHERE user_id = ? AND
    created_at = ? AND shard_id = ?``.
    """
    args = [(check, (u, created, sid)) for u in users]
    for ok, rows in execute_concurrent(session, args, concurrency=CONCURRENCY):
        if not ok or not rows.one():
            return False
    return True


class KafkaTail:
    """Note when each change-event key first shows up on the CDC topics, from now on."""

    def __init__(self, bootstrap: str, topics: dict[str, str], group: str):
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        meta = self._consumer.list_topics(timeout=10).topics
        self._tables = {topic: table for table, topic in topics.items()}
        self._consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_END)
                for topic in topics.values()
                for p in (meta[topic].partitions if topic in meta else ())
            ]
        )
        self._seen: dict[Key, list[float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kafka-tail", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for m in self._consumer.consume(500, 0.05):
                if m.error() or m.value() is None:
                    continue
                now = time.monotonic()
                table = self._tables.get(m.topic())
                try:
                    doc = json.loads(m.key())
                    key = (table, tuple(doc[k] for k in KEYS[table]))
                except (ValueError, KeyError, TypeError):
                    continue
                with self._lock:
                    self._seen.setdefault(key, []).append(now)

    def capture(self, key: Key, ok_at: float) -> float | None:
        """Seconds from the 2xx to the key's first event on Kafka (0 if it came first)."""
        with self._lock:
            times = [t for t in self._seen.get(key, ()) if t >= ok_at - 1.0]
        return max(0.0, times[0] - ok_at) if times else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
