"""Coalescing a writer batch (``statements.coalesce``) never changes what Cassandra holds.

Property: for any list of the pipeline's writes (every write statement of the registry,
values drawn from tiny domains so that rows, prefixes and timestamps collide often),
applying all of them and applying only the coalesced ones leave the same cells, row and
range tombstones in the last-write-wins model of Cassandra (``lww.Store``, the one the
convergence tests use), hence the same read model.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as hs

from feedline import statements as st
from feedline.strategies.common import mutation
from tests.unit.strategies.lww import Store

WRITES = sorted(name for name, s in st.STATEMENTS.items() if s.is_write)
TIMES = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)]


def _value(column: str) -> hs.SearchStrategy:
    if column == "created_at":
        return hs.sampled_from(TIMES)
    if column in ("target",):
        return hs.sampled_from(["pull", "push"])
    if column in ("body", "handle"):
        return hs.sampled_from(["a", "b"])
    return hs.integers(1, 2)


@hs.composite
def writes(draw: hs.DrawFn) -> object:
    name = draw(hs.sampled_from(WRITES))
    params = tuple(draw(_value(c)) for c in st.get(name).binds)
    return mutation(name, params, draw(hs.integers(1, 4)))


def _state(mutations: list) -> tuple:
    store = Store()
    for m in mutations:
        store.apply(m)
    return store.cells, store.tombstones, store.slices


@settings(max_examples=400, deadline=None)
@given(hs.lists(writes(), max_size=30))
def test_a_coalesced_batch_leaves_what_the_whole_batch_leaves(batch: list) -> None:
    kept = st.coalesce(batch)
    assert _state(kept) == _state(batch)
    assert set(kept) <= set(batch)


def test_a_hot_rows_older_writes_go_and_ties_stay() -> None:
    counts = [mutation(st.UPDATE_SHARD, (7, "x", n, 0), 10 + n) for n in range(5)]
    assert st.coalesce(counts[::-1]) == [counts[-1]]
    tie = [mutation(st.UPDATE_SHARD, (7, "x", n, 0), 20) for n in (1, 2)]
    assert st.coalesce([*tie, tie[0]]) == tie  # equal timestamps: both kept, duplicate gone
