"""Build every read of the Cassandra read model from the table definitions, in one place.

The web's pages and hydration (``store.QUERIES``), verify and rebuild (``partitions``)
all read the tables the pipeline writes; their CQL is derived here from
``feedline.statements.TABLES`` (partition key, clustering key, columns, which mirror the
migrations) and from the lists' specs (``formats.LISTS``), so no reader spells a column,
key or comparison of its own. Pure functions of identifiers taken from those definitions,
never from data; values are always ``?`` binds.
"""

from __future__ import annotations

from collections.abc import Sequence

from feedline.readmodel.formats import LISTS, OBJECT_TABLES, ListSpec
from feedline.statements import TABLES


def _select(table: str, columns: Sequence[str] | None, where: str) -> str:
    cols = ", ".join(columns if columns is not None else TABLES[table].columns)
    return f"SELECT {cols} FROM {table} WHERE {where}"  # noqa: S608 (identifiers only)


def _key(table: str) -> str:
    (column,) = TABLES[table].partition_key  # every read-model table has a one-column key
    return column


def partition(table: str) -> str:
    """Return the read of one whole partition (every column), in clustering order."""
    return _select(table, None, f"{_key(table)} = ?")


def rows_in(table: str) -> str:
    """Return the read of the whole rows of several partitions at once (``IN ?``)."""
    return _select(table, None, f"{_key(table)} IN ?")


def partition_keys(table: str) -> str:
    """Return the scan of a table's distinct partition keys (a token-range scan, paged)."""
    return f"SELECT DISTINCT {_key(table)} FROM {table}"  # noqa: S608 (identifiers only)


def head(spec: ListSpec) -> str:
    """Return the read of a list's first rows (binds: owner, limit)."""
    return _select(spec.table, spec.columns, f"{_key(spec.table)} = ?") + " LIMIT ?"


def after(spec: ListSpec) -> str:
    """Return the read of a list's rows after a position (binds: owner, position, limit).

    The position is the clustering key, so this is a clustering range of one partition:
    ``<`` for a list kept newest first (descending), ``>`` for one kept ascending.
    """
    clustering = TABLES[spec.table].clustering
    op = "<" if spec.descending else ">"
    if len(clustering) == 1:
        (column,) = clustering
        bound = f"{column} {op} ?"
    else:
        bound = f"({', '.join(clustering)}) {op} ({', '.join('?' for _ in clustering)})"
    return _select(spec.table, spec.columns, f"{_key(spec.table)} = ? AND {bound}") + " LIMIT ?"


def web() -> dict[str, str]:
    """Return the web's prepared reads by name.

    Each list's head and ``_after`` page, and each object kind's hydration: one
    multi-partition ``IN`` query per kind and page (the coordinator fans out), a third of
    the cost of one query per object, most of which is the driver's Python.
    """
    queries: dict[str, str] = {}
    for spec in LISTS:
        queries[spec.name] = head(spec)
        queries[f"{spec.name}_after"] = after(spec)
    for kind, table in OBJECT_TABLES.items():
        queries[kind] = rows_in(table)
    queries.update(PULL)
    queries.update(STREAM)
    return queries


# The hybrid fan-out's merge (``merge``, docs/events.md "Push and pull authors"): the pull
# authors a reader lists, and which of them the reader follows, since when (one partition).
PULL = {
    "pull_following": partition("pull_following_by_user"),
    "following_in": _select(
        "following_by_user", ("followee_id", "created_at"), "user_id = ? AND followee_id IN ?"
    ),
}


# The live stream (feedline.stream): every author a reader follows and since when, to
# route notices (and to know which new shards are surely in the reader's feed).
STREAM = {
    "following_ids": _select("following_by_user", ("followee_id", "created_at"), "user_id = ?")
}
