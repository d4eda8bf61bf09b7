"""A pure in-memory fake of Cassandra's cell semantics that runs the real fan-out programs.

Cassandra resolves every cell independently: the write with the highest timestamp wins, and
on a tie a deletion beats a live value (between two live values the greater one wins). A row
is visible while its row marker (written by INSERT) or any regular cell is live; a delete of
a primary-key prefix (a range tombstone) shadows every row under it. This is all the
convergence argument relies on, so it is all the fake models.

Reads are the registry's own SELECTs (``feedline.statements``), evaluated on the fake by
their CQL text: equality or a range on named columns, nothing else (``select``).

``steps``/``apply_plan`` execute a ``Plan`` the way the writer does, with the writer's
own code for expansions (``feedline.fanout.program``): the plan's mutations, then each
expansion's reads, writes and re-validation. Every single read and write is a step, so a
scheduler can interleave several plans like concurrent writers would. ``revalidate=False``
skips the re-validation, and ``programs`` swaps in other expansion programs (the naive
protocols of the counter-example tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from feedline import fanout
from feedline import statements as st
from feedline.strategies.base import Mutation, Plan

MARKER = ""  # the row marker's column name
Key = tuple[Any, ...]
NO_WINDOW_MS = 10**12  # ~31 years: every shard of these histories is in every window
FEED_TABLES = ("feed_by_user", "feed_by_user_author")


@dataclass
class Store:
    """Cells ``(table, pk, column) -> (ts, value)`` and tombstones ``(table, prefix) -> ts``.

    ``blind_deletes`` lists deletes of feed rows that were not there when deleted: applied
    once in order, the pipeline writes none (Cassandra keeps a TERMINAL tombstone in a
    partition that is written to all the time for good, so they would pile up).
    """

    cells: dict[tuple[str, Key, str], tuple[int, Any]] = field(default_factory=dict)
    tombstones: dict[tuple[str, Key], int] = field(default_factory=dict)
    # Slice tombstones (a feed trim): (table, key prefix, upper bound) -> ts; they shadow
    # every row under the prefix whose next clustering values are <= the bound.
    slices: dict[tuple[str, Key, Key], int] = field(default_factory=dict)
    blind_deletes: list[tuple[str, Key]] = field(default_factory=list)
    log: list[tuple[str, str, Key, int]] = field(default_factory=list)  # (kind, table, key, ts)

    def insert(self, table: str, row: dict[str, Any], ts: int) -> None:
        """Upsert ``row`` (must hold the whole primary key) with a row marker, at ``ts``."""
        spec = st.TABLES[table]
        pk = tuple(row[c] for c in spec.primary_key)
        self.log.append(("insert", table, pk, ts))
        for column, value in [(MARKER, None), *((c, row[c]) for c in spec.regular if c in row)]:
            cell = (table, pk, column)
            old = self.cells.get(cell)
            if old is None or (ts, _order(value)) > (old[0], _order(old[1])):
                self.cells[cell] = (ts, value)

    def delete(self, table: str, key: Key, ts: int) -> None:
        """Delete the row ``key`` (or every row under a key prefix) at ``ts``."""
        whole_row = len(key) == len(st.TABLES[table].primary_key)
        if table in FEED_TABLES and whole_row and key not in self.rows(table):
            self.blind_deletes.append((table, key))
        self.log.append(("delete", table, key, ts))
        self.tombstones[(table, key)] = max(ts, self.tombstones.get((table, key), ts))

    def delete_below(self, table: str, prefix: Key, bound: Key, ts: int) -> None:
        """Delete every row under ``prefix`` whose next clustering values are <= ``bound``."""
        self.log.append(("delete_below", table, (*prefix, *bound), ts))
        key = (table, prefix, bound)
        self.slices[key] = max(ts, self.slices.get(key, ts))

    def apply(self, m: Mutation) -> None:
        stmt = st.get(m.statement)
        assert m.partition == stmt.partition(m.params), "partition must match the key"
        if stmt.below:
            n = len(stmt.binds) - len(stmt.below)
            self.delete_below(stmt.table, tuple(m.params[:n]), tuple(m.params[n:]), m.timestamp)
        elif stmt.kind == "insert":
            self.insert(stmt.table, dict(zip(stmt.binds, m.params, strict=True)), m.timestamp)
        else:
            self.delete(stmt.table, tuple(m.params), m.timestamp)

    def _shadow(self, table: str, pk: Key) -> int:
        n = len(st.TABLES[table].partition_key)
        rows = [self.tombstones.get((table, pk[:k]), -1) for k in range(n, len(pk) + 1)]
        ranges = [
            ts
            for (t, prefix, bound), ts in self.slices.items()
            if t == table
            and pk[: len(prefix)] == prefix
            and pk[len(prefix) : len(prefix) + len(bound)] <= bound
        ]
        return max(rows + ranges)

    def rows(self, table: str) -> dict[Key, dict[str, Any]]:
        """Return the visible rows of ``table``: pk -> live regular columns."""
        out: dict[Key, dict[str, Any]] = {}
        for (t, pk, column), (ts, value) in self.cells.items():
            if t != table or ts <= self._shadow(t, pk):
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

    def select(self, read: fanout.Read) -> list[Any]:
        """Evaluate one of the registry's SELECTs on the visible rows."""
        query = _parse(read.statement)
        params = dict(zip(query.binds, read.params, strict=True))
        spec = st.TABLES[query.table]
        out = []
        # Clustering order (ascending keys here), which a LIMIT depends on.
        for pk, regular in sorted(self.rows(query.table).items(), key=lambda kv: _order_pk(kv[0])):
            row = {**dict(zip(spec.primary_key, pk, strict=True)), **regular}
            if all(_OPS[op](row.get(col), params[bind]) for col, op, bind in query.where):
                out.append(SimpleNamespace(**self._columns(query, pk, row)))
        return out if query.limit is None else out[: params[query.limit]]

    def _columns(self, query: Query, pk: Key, row: dict[str, Any]) -> dict[str, Any]:
        """Return the selected columns; ``WRITETIME(c) AS name`` is the cell's timestamp."""
        out = {}
        for c in query.columns:
            written = _WRITETIME.match(c)
            if written:
                out[written[2]] = self.cells[(query.table, pk, written[1])][0]
            else:
                out[c] = row.get(c)
        return out


def _order_pk(pk: Key) -> tuple[Any, ...]:
    return tuple((type(v).__name__, v if isinstance(v, int) else repr(v)) for v in pk)


def _order(value: Any) -> tuple[str, str]:
    return (type(value).__name__, repr(value))


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    ">=": lambda a, b: a is not None and a >= b,
    ">": lambda a, b: a is not None and a > b,
    "<=": lambda a, b: a is not None and a <= b,
    "<": lambda a, b: a is not None and a < b,
}
_SELECT = re.compile(
    r"^SELECT (?P<cols>.+?) FROM (?P<table>\w+) WHERE (?P<where>.+?)(?P<limit> LIMIT \?)?$"
)
_WRITETIME = re.compile(r"^WRITETIME\((\w+)\) AS (\w+)$")
_COND = re.compile(r"^(\w+) (=|>=|>|<=|<) \?$")


@dataclass(frozen=True)
class Query:
    table: str
    columns: tuple[str, ...]
    where: tuple[tuple[str, str, str], ...]  # (column, operator, bind name)
    binds: tuple[str, ...]
    limit: str | None = None  # the bind name of ``LIMIT ?``


def _parse(name: str) -> Query:
    """Parse a registry SELECT: ``SELECT cols FROM t WHERE c op ? AND ... [LIMIT ?]``."""
    stmt = st.get(name)
    found = _SELECT.match(stmt.cql)
    assert found, f"{name}: the fake reads only plain SELECT ... WHERE ...: {stmt.cql}"
    binds, limit = stmt.binds, None
    if found["limit"]:
        binds, limit = stmt.binds[:-1], stmt.binds[-1]
    where = []
    for cond, bind in zip(found["where"].split(" AND "), binds, strict=True):
        parsed = _COND.match(cond)
        assert parsed, f"{name}: unsupported condition {cond!r}"
        where.append((parsed[1], parsed[2], bind))
    columns = tuple(c.strip() for c in found["cols"].split(","))
    return Query(found["table"], columns, tuple(where), stmt.binds, limit)


Programs = dict[type, Callable[[Any, int], fanout.Program]]
Shuffle = Callable[[list[Mutation]], list[Mutation]]


def steps(
    store: Store,
    plan: Plan,
    window_ms: int = NO_WINDOW_MS,
    revalidate: bool = True,
    programs: Programs | None = None,
    shuffle: Shuffle | None = None,
    chunk: int = fanout.CHUNK,
    trims: fanout.FeedTrims | None = None,
    pull: fanout.PullPolicy | None = None,
):
    """Yield after each atomic step of executing ``plan`` (one write, or one read).

    The plan's own mutations come first, then each expansion's program runs: each read of
    a round is a step, then its writes (in ``shuffle``'s order: the writer sends them
    concurrently), then its re-validation the same way; then the expansion's next step
    (``Writes.more``, ``chunk`` followers or rows each), as the writer does. With
    ``trims``, the feeds those steps fill are trimmed as the writer's ``Expander`` does.
    ``pull`` is the hybrid fan-out's policy (None: every author is push).
    """
    order = shuffle or list
    for m in order(list(plan.mutations)):
        store.apply(m)
        yield
    for x in plan.expansions:
        make = (programs or {}).get(type(x))
        prog = make(x, window_ms) if make else fanout.program(x, window_ms, chunk, pull)
        if trims is not None:
            prog = fanout.trimmed(prog, trims, fanout.own_feed(x))
        while prog is not None:
            writes = yield from run(store, prog)
            for m in order(list(writes.mutations)):
                store.apply(m)
                yield
            if revalidate and writes.recheck is not None:
                undo = yield from run(store, writes.recheck())
                for m in order(list(undo)):
                    store.apply(m)
                    yield
            prog = writes.more() if writes.more is not None else None


def run(store: Store, prog: fanout.Program):
    """Run a fan-out program on ``store``, one read per step; return its result."""
    try:
        reads = next(prog)
        while True:
            rows = []
            for r in reads:
                rows.append(store.select(r))
                yield
            reads = prog.send(rows)
    except StopIteration as done:
        return done.value


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
