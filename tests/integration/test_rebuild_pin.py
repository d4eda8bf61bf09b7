"""The rebuild's pinned snapshot never starts while a write transaction is open.

Deterministic on a quiet database: a write transaction W that has written its rows but not
committed holds the newest xid, above the snapshot's xmax, so ``pg_snapshot_xip`` does not
list it. Before the fix ``Source(pin_lsn=True)`` accepted that moment: L was above W's WAL,
the snapshot did not see W, and the rebuild's writes at L - 1 beat W's events for good
(test_rebuild: users_by_id.shard_count 4 in Cassandra, 3 in PostgreSQL).
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import psycopg2
import pytest

from feedline.verify.source import Source

pytestmark = pytest.mark.integration


def test_pin_waits_for_an_open_write_transaction(settings: Any) -> None:
    setup = psycopg2.connect(settings.postgres.dsn(), connect_timeout=5)
    setup.autocommit = True
    with setup.cursor() as cur:
        cur.execute("INSERT INTO users (handle) VALUES (%s) RETURNING id",
                    (f"pin_{secrets.token_hex(6)}",))  # fmt: skip
        author = cur.fetchone()[0]
    writer = psycopg2.connect(settings.postgres.dsn(), connect_timeout=5)
    try:
        with writer.cursor() as cur:  # W: shard row + the trigger's users UPDATE, open
            cur.execute("INSERT INTO shards (author_id, body) VALUES (%s, 'w')", (author,))
        # A pin that started while W was open must see W once it pins.
        commit = threading.Timer(0.5, writer.commit)
        commit.start()
        started = time.monotonic()
        with Source(settings.postgres, 0, pin_lsn=True) as source:
            waited = time.monotonic() - started
            row = source.expected(author).partitions[("users_by_id", author)][0]
        assert row["shard_count"] == 1, "pinned a snapshot that misses an open transaction"
        assert waited >= 0.4
    finally:
        commit.cancel()
        commit.join()
        writer.close()
        setup.close()
