"""Count the tombstones Cassandra reads: traced reads, and the warnings in its log.

Two views of the same thing (issue 16, "reads must not wade through tombstones"): a traced
read reports, per replica, "Read N live rows and M tombstone cells" for exactly that read;
Cassandra's log keeps a WARN line for any read past ``tombstone_warn_threshold`` (1,000 on
the stack), whoever made it, the pipeline's own trim reads included. The bounded-feeds
integration test and bench/cap.py both use these.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

from cassandra.query import SimpleStatement

from feedline.readmodel import queries
from feedline.readmodel.formats import FEED

TRACED = re.compile(r"Read (\d+) live rows and (\d+) tombstone cells")
# A warning ("Read ... tombstone cells for query SELECT ... FROM ks.table WHERE ...") or a
# failure ("Scanned over N tombstones during query 'SELECT ... FROM ks.table ...'").
LOGGED = re.compile(r"^(WARN|ERROR) .*tombstone.* FROM (\w+)\.(\w+) WHERE (\w+) = (-?\d+)")


class TracedRead(NamedTuple):
    rows: int  # rows the read returned
    live: int  # live rows the replica read for it
    tombstones: int  # tombstone cells the replica read for it
    warnings: list[str]  # warnings the coordinator sent back to the client


def traced(session: Any, cql: str, params: tuple[Any, ...]) -> TracedRead:
    """Run one read (CQL with ``?`` binds) with tracing on; return what the replica read."""
    result = session.execute(SimpleStatement(cql.replace("?", "%s")), params, trace=True)
    rows = len(list(result))
    events = result.get_query_trace(max_wait_sec=10).events
    reads = [(int(m[1]), int(m[2])) for e in events if (m := TRACED.search(e.description))]
    if not reads:
        raise RuntimeError(f"no read in the trace: {[e.description for e in events]}")
    live, tombstones = max(reads, key=lambda r: r[1])  # one replica here; the worst if more
    return TracedRead(rows, live, tombstones, list(result.response_future.warnings or ()))


def feed_head(session: Any, user_id: int, limit: int) -> TracedRead:
    """Read a feed's first ``limit`` rows with the read model's own query, traced."""
    return traced(session, queries.head(FEED), (user_id, limit))


def feed_whole(session: Any, user_id: int) -> TracedRead:
    """Read a whole feed partition (what paging past the cap ends up reading), traced."""
    return traced(session, queries.partition(FEED.table), (user_id,))


class LogWatch:
    """The tombstone warnings Cassandra logs from now on (its log is one growing file)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def lines(self) -> list[tuple[str, str, int, str]]:
        """Return (keyspace, table, partition key, line) per tombstone warning since start."""
        if not self.path.exists():
            raise RuntimeError(f"no Cassandra log at {self.path}")
        with self.path.open("rb") as f:
            f.seek(self.offset if f.seek(0, 2) >= self.offset else 0)  # rewritten: all of it
            text = f.read().decode(errors="replace")
        return [
            (m[2], m[3], int(m[5]), line)
            for line in text.splitlines()
            if (m := LOGGED.search(line))
        ]
