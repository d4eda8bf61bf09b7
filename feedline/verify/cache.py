"""Check cached Redis entries against PostgreSQL (the read path's cache contract).

The cache may lack anything (a miss is never a difference); what it holds must agree
with the source of truth. Entries are decoded, and the expected ones built, with the read
model's own formats (``feedline.readmodel.formats``: the window codecs, each list's row
and order, the shard and user JSON), so verify and the reads cannot drift apart:

- ``user(id)`` / ``shard(id)``: the hydrated JSON object; a negative entry ("no such
  id") for a user or shard that exists is stale too;
- ``feed``, ``user_shards``, ``comments``, ``followers``, ``following``: a *window*, the
  first positions of the list; it must equal the head of the expected list, and the
  whole list when it says it is complete.

Leases (a reader loading the key right now) are skipped.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from feedline.readmodel import formats
from feedline.readmodel.formats import LEASE, NEGATIVE, VALUE, ListSpec
from feedline.verify.model import Difference, Row
from feedline.verify.source import Expected

LISTS: dict[str, ListSpec] = {spec.table: spec for spec in formats.LISTS}
OBJECTS: dict[str, str] = {table: kind for kind, table in formats.OBJECT_TABLES.items()}


def _attrs(row: Row) -> Any:
    """Return a verify row (a dict) as the read path sees a driver row (attributes)."""
    return SimpleNamespace(**row)


def expected_list(spec: ListSpec, rows: list[Row]) -> list[tuple[Any, ...]]:
    """Return the rows a window of ``spec`` should hold, in the list's order."""
    return sorted((spec.row(_attrs(r)) for r in rows), reverse=spec.descending)


def expected_object(table: str, row: Row) -> Any:
    """Return the JSON document the cache should hold for ``row`` (parsed; None: none)."""
    doc = formats.SERIALISE[OBJECTS[table]](_attrs(row))
    return None if doc is None else json.loads(doc)


def check_user(client: Any, expected: Expected) -> tuple[int, list[Difference]]:
    """Return how many cache entries of ``expected``'s partitions were checked, and diffs."""
    wanted: list[tuple[str, int, str]] = []
    for table, key in expected.partitions:
        if table in LISTS:
            wanted.append((table, key, LISTS[table].key(key)))
        elif table in OBJECTS:
            wanted.append((table, key, formats.OBJECT_KEYS[OBJECTS[table]](key)))
    if not wanted:
        return 0, []
    entries = client.mget([k for _, _, k in wanted])
    checked, found = 0, []
    for (table, key, redis_key), entry in zip(wanted, entries, strict=True):
        if entry is None or entry[:1] == LEASE:
            continue
        checked += 1
        rows, least = expected.partitions[(table, key)], None
        if table == "feed_by_user" and expected.beyond_cap:
            # A bounded feed may still hold rows past its cap until its next trim.
            rows, least = rows + expected.beyond_cap, len(rows)
        problem = (
            _object(table, rows, entry) if table in OBJECTS else _window(table, rows, entry, least)
        )
        if problem is not None:
            exp, act = problem
            found.append(Difference("stale", f"redis {redis_key}", key, table, exp, act))
    return checked, found


def _object(table: str, rows: list[Row], entry: bytes) -> tuple[Any, Any] | None:
    if entry[:1] == NEGATIVE:
        return ("exists",), ("negative entry",)
    if entry[:1] != VALUE:
        return None
    want = expected_object(table, rows[0])
    got = json.loads(entry[1:])
    return None if got == want else ((json.dumps(want),), (json.dumps(got),))


def _window(
    table: str, rows: list[Row], entry: bytes, least: int | None = None
) -> tuple[Any, Any] | None:
    """Compare a cached window with the expected list ``rows``; ``least``: a complete
    window may end after that many rows (a bounded feed's rows past the cap are optional)."""
    if entry[:1] != VALUE:
        return None
    spec = LISTS[table]
    window = spec.decode(entry)
    want = expected_list(spec, rows)
    got = [tuple(r) for r in window.rows]
    whole = window.complete and least is None
    head = want if whole else want[: len(got)]
    if got == head and (not window.complete or least is None or len(got) >= least):
        return None
    return (f"{len(want)} items, head {head[:3]}",), (f"{len(got)} cached, head {got[:3]}",)
