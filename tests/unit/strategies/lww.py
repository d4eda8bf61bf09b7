"""A pure in-memory fake of Cassandra's cell semantics, and of the writer's expansions.

Cassandra resolves every cell independently: the write with the highest timestamp wins, and
on a tie a deletion beats a live value (between two live values the greater one wins). A row
is visible while its row marker (written by INSERT) or any regular cell is live. This is all
the convergence argument relies on, so it is all the fake models.

``steps``/``apply_plan`` execute a ``Plan`` the way the writer must: mutations first, then each
expansion's reads and writes, including the re-validation after feed writes described in
docs/events.md (``revalidate=False`` gives the naive protocol, for the counter-example test).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from feedline import statements as st
from feedline.strategies.base import (
    TERMINAL,
    Backfill,
    FanOutShard,
    Mutation,
    Plan,
    PurgeShard,
    Unbackfill,
)

MARKER = ""  # the row marker's column name
Key = tuple[Any, ...]


@dataclass
class Store:
    """Cells ``(table, pk, column) -> (ts, value)`` and row tombstones ``(table, pk) -> ts``."""

    cells: dict[tuple[str, Key, str], tuple[int, Any]] = field(default_factory=dict)
    tombstones: dict[tuple[str, Key], int] = field(default_factory=dict)

    def insert(self, table: str, row: dict[str, Any], ts: int) -> None:
        """Upsert ``row`` (must hold the whole primary key) with a row marker, at ``ts``."""
        spec = st.TABLES[table]
        pk = tuple(row[c] for c in spec.primary_key)
        for column, value in [(MARKER, None), *((c, row[c]) for c in spec.regular if c in row)]:
            cell = (table, pk, column)
            old = self.cells.get(cell)
            if old is None or (ts, _order(value)) > (old[0], _order(old[1])):
                self.cells[cell] = (ts, value)

    def delete(self, table: str, pk: Key, ts: int) -> None:
        """Delete a whole row at ``ts``: shadows every cell with timestamp <= ts."""
        self.tombstones[(table, pk)] = max(ts, self.tombstones.get((table, pk), ts))

    def apply(self, m: Mutation) -> None:
        stmt = st.get(m.statement)
        assert m.partition == stmt.partition(m.params), "partition must match the key"
        if stmt.kind == "insert":
            self.insert(stmt.table, dict(zip(stmt.binds, m.params, strict=True)), m.timestamp)
        else:
            self.delete(stmt.table, tuple(m.params), m.timestamp)

    def rows(self, table: str) -> dict[Key, dict[str, Any]]:
        """Return the visible rows of ``table``: pk -> live regular columns."""
        out: dict[Key, dict[str, Any]] = {}
        for (t, pk, column), (ts, value) in self.cells.items():
            if t != table or ts <= self.tombstones.get((t, pk), -1):
                continue
            row = out.setdefault(pk, {})
            if column != MARKER:
                row[column] = value
        return out

    def partition(self, table: str, *partition_key: Any) -> dict[Key, dict[str, Any]]:
        n = len(partition_key)
        return {pk: r for pk, r in self.rows(table).items() if pk[:n] == partition_key}

    def visible(self) -> dict[str, dict[Key, dict[str, Any]]]:
        return {table: self.rows(table) for table in st.TABLES}


def _order(value: Any) -> tuple[str, str]:
    return (type(value).__name__, repr(value))


def steps(store: Store, plan: Plan, backfill_limit: int = 10_000, revalidate: bool = True):
    """Yield after each atomic step of executing ``plan`` (one write, or one partition read).

    The plan's own mutations are one step and come first; then each expansion reads and
    writes one step at a time, so a scheduler can interleave several plans like concurrent
    writers would.
    """
    for m in plan.mutations:
        store.apply(m)
    yield
    for x in plan.expansions:
        yield from _EXPANSIONS[type(x)](store, x, backfill_limit, revalidate)


def apply_plan(store: Store, plan: Plan, **kw: Any) -> None:
    """Execute ``plan`` against ``store`` alone, as one writer would."""
    for _ in steps(store, plan, **kw):
        pass


def apply_all(store: Store, plans: Iterable[Plan], **kw: Any) -> Store:
    for plan in plans:
        apply_plan(store, plan, **kw)
    return store


def apply_concurrently(store: Store, plans: Iterable[Plan], pick, **kw: Any) -> Store:
    """Run all ``plans`` at once, ``pick(n)`` choosing which of n running plans steps next."""
    running = [steps(store, p, **kw) for p in plans]
    while running:
        i = pick(len(running))
        try:
            next(running[i])
        except StopIteration:
            running.pop(i)
    return store


def _feed_write(store: Store, user: int, created, sid: int, author: int, ts: int, check: bool):
    row = {"user_id": user, "created_at": created, "shard_id": sid, "author_id": author}
    store.insert("feed_by_user", row, ts)
    yield
    if not check:
        return
    # Re-validate after writing: if a fact of the join vanished meanwhile, undo at the
    # timestamp that cannot hurt a newer truth (the edge's LSN; TERMINAL for a dead shard).
    edge_live = (user, author) in store.rows("following_by_user")
    yield
    if not edge_live:
        store.delete("feed_by_user", (user, created, sid), ts)
        yield
    shard_live = (sid,) in store.rows("shards_by_id")
    yield
    if not shard_live:
        store.delete("feed_by_user", (user, created, sid), TERMINAL)
        yield


def _fan_out(store: Store, x: FanOutShard, _limit: int, check: bool):
    followers = store.partition("followers_by_user", x.author_id)
    yield
    for (_, follower), row in followers.items():
        yield from _feed_write(
            store, follower, x.created_at, x.shard_id, x.author_id, row["edge_lsn"], check
        )


def _backfill(store: Store, x: Backfill, limit: int, check: bool):
    shards = sorted(store.partition("shards_by_author", x.followee_id), reverse=True)[:limit]
    yield
    for _, created, sid in shards:
        yield from _feed_write(store, x.follower_id, created, sid, x.followee_id, x.lsn, check)


def _unbackfill(store: Store, x: Unbackfill, _limit: int, check: bool):
    if check:  # read what is actually in the follower's feed
        items = [
            (created, sid)
            for (_, created, sid), row in store.partition("feed_by_user", x.follower_id).items()
            if row.get("author_id") == x.followee_id
        ]
    else:  # the naive protocol: read the followee's live shards
        items = [(c, s) for (_, c, s) in store.partition("shards_by_author", x.followee_id)]
    yield
    for created, sid in items:
        store.delete("feed_by_user", (x.follower_id, created, sid), x.lsn)
        yield


def _purge(store: Store, x: PurgeShard, _limit: int, _check: bool):
    followers = list(store.partition("followers_by_user", x.author_id))
    yield
    for _, follower in followers:
        store.delete("feed_by_user", (follower, x.created_at, x.shard_id), TERMINAL)
        yield


_EXPANSIONS = {
    FanOutShard: _fan_out,
    Backfill: _backfill,
    Unbackfill: _unbackfill,
    PurgeShard: _purge,
}
