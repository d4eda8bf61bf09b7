"""Read what the Cassandra read model holds, whole partition by partition, for verify and rebuild.

Every query names one partition (or, for orphan scans, pages through the distinct
partition keys of a table), so nothing reads a whole table into memory. A user's
partitions are fetched concurrently with the driver's async API. The CQL is
``queries.partition`` and ``queries.partition_keys``: every column the pipeline writes
(``feedline.statements.TABLES``), so rebuild can re-write or delete any row it reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.query import SimpleStatement, dict_factory

from feedline import cassandra
from feedline.readmodel import queries
from feedline.settings import CassandraSettings
from feedline.statements import TABLES

Row = Mapping[str, Any]
Partition = tuple[str, int]  # (table, partition key value)

PAGE = 1000


class Partitions:
    """A Cassandra session for verify and rebuild (rows as dicts)."""

    def __init__(self, settings: CassandraSettings):
        self.cluster, self.session = cassandra.connect(settings, request_timeout=30.0)
        # Our own cluster object: its default profile may hand rows out as dicts.
        self.session.get_execution_profile(EXEC_PROFILE_DEFAULT).row_factory = dict_factory
        read = cassandra.prepare_read
        self._select = {t: read(self.session, queries.partition(t)) for t in TABLES}
        for prepared in self._select.values():
            prepared.fetch_size = PAGE

    def close(self) -> None:
        self.cluster.shutdown()

    def __enter__(self) -> Partitions:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def read(self, partitions: Iterable[Partition]) -> dict[Partition, list[Row]]:
        """Return every row of each partition (all pages), fetched concurrently."""
        futures = {
            (table, key): self.session.execute_async(self._select[table], (key,))
            for table, key in partitions
        }
        return {part: list(future.result()) for part, future in futures.items()}

    def partition_keys(self, table: str) -> Iterator[int]:
        """Page through the distinct partition keys of ``table`` (a token-range scan)."""
        (column,) = TABLES[table].partition_key
        query = SimpleStatement(queries.partition_keys(table), fetch_size=PAGE)
        for row in self.session.execute(query):
            yield row[column]
