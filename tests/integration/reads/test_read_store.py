"""ReadStore.run keeps at most ``cassandra_concurrency`` reads in flight, on the real node.

The driver's request timeout runs from the moment a request is handed to it, so a bulk
read sent all at once (the stream process re-reading a thousand feeds in one round) made
the last requests wait behind the first at the replicas: on the 3-node cluster 555 of
2,000 feed reads timed out, and each ended a stream. Here a bulk read far larger than the
window comes back whole, and the driver's own count of requests in flight (sampled from
another thread) never passes the window. Without the window it peaked at 5,621 of 10,000.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from feedline.readmodel.store import ReadStore

pytestmark = pytest.mark.integration

READS = 3_000
WINDOW = 16


def test_a_bulk_read_keeps_its_window_of_requests_in_flight(settings):
    store = ReadStore(
        settings.cassandra, dataclasses.replace(settings.reads, cassandra_concurrency=WINDOW)
    )
    session, _ = store._ready()
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            state = session.get_pool_state().values()
            peak[0] = max(peak[0], sum(sum(host["in_flights"]) for host in state))
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        rows = store.run([("feed", (user_id, 20)) for user_id in range(1, READS + 1)])
    finally:
        done.set()
        sampler.join()
        store.close()
    assert len(rows) == READS
    assert 0 < peak[0] <= WINDOW
