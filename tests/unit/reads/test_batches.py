"""How ``feedline.cassandra.group_statements`` packs mutations into statements.

Pure logic: real driver statements (a PreparedStatement built without a server binds and
routes like one the server returned); which replicas own a partition is given by the test.
"""

from __future__ import annotations

from collections import Counter

from cassandra.cqltypes import LongType, UTF8Type
from cassandra.protocol import ColumnMetadata
from cassandra.query import BatchStatement, PreparedStatement

from feedline.cassandra import BATCH_BYTES, BATCH_PARTITIONS, MAX_BATCH, group_statements
from feedline.strategies.base import Mutation

COLUMNS = [
    ColumnMetadata("ks", "feed", "user_id", LongType),
    ColumnMetadata("ks", "feed", "body", UTF8Type),
]
INSERT = PreparedStatement(
    COLUMNS, b"q", [0], "INSERT INTO feed (user_id, body) VALUES (?, ?)", "ks", 4, [], None
)


def mutations(users: range, rows: int = 1, body: str = "x") -> list[Mutation]:
    return [
        Mutation("insert", (u, f"{body}{i}"), 1, ("feed", u)) for u in users for i in range(rows)
    ]


def bind(m: Mutation):
    return INSERT.bind(m.params)


def one_replica_set(_statement) -> str:
    return "node1"


def flat(statements) -> list[tuple[bytes, ...]]:
    """The bound values of every statement sent, batches opened."""
    out = []
    for s in statements:
        if isinstance(s, BatchStatement):
            out.extend(tuple(params) for _, _, params in s._statements_and_parameters)
        else:
            out.append(tuple(s.values))
    return out


def partitions_of(statement) -> set[bytes]:
    if isinstance(statement, BatchStatement):
        return {params[0] for _, _, params in statement._statements_and_parameters}
    return {statement.routing_key}


def test_without_replicas_each_partition_is_its_own_statement():
    statements = group_statements(mutations(range(6)), bind)
    assert len(statements) == 6
    assert all(len(partitions_of(s)) == 1 for s in statements)


def test_partitions_with_one_replica_set_share_a_batch():
    statements = group_statements(mutations(range(6), rows=2), bind, one_replica_set)
    assert len(statements) == 1
    assert len(partitions_of(statements[0])) == 6
    assert len(flat(statements)) == 12
    assert statements[0].routing_key == INSERT.bind((0, "")).routing_key  # token-aware


def test_a_batch_holds_at_most_batch_partitions():
    statements = group_statements(mutations(range(25)), bind, one_replica_set)
    assert [len(partitions_of(s)) for s in statements] == [BATCH_PARTITIONS, BATCH_PARTITIONS, 5]
    assert len(flat(statements)) == 25


def test_a_batch_holds_at_most_batch_bytes():
    big = "y" * (BATCH_BYTES // 3)
    statements = group_statements(mutations(range(7), body=big), bind, one_replica_set)
    for s in statements:
        size = sum(len(v) for values in flat([s]) for v in values)
        assert size <= BATCH_BYTES
    assert len(statements) == 4  # two of ~1.4 KiB fit, three do not
    assert len(flat(statements)) == 7


def test_replica_sets_never_mix_and_unknown_replicas_go_alone():
    def by_parity(statement):
        user = int.from_bytes(statement.routing_key, "big")
        return None if user % 3 == 0 else user % 2

    statements = group_statements(mutations(range(12)), bind, by_parity)
    for s in statements:
        users = {int.from_bytes(k, "big") for k in partitions_of(s)}
        assert len({u % 2 for u in users}) == 1
        assert len(users) == 1 or not any(u % 3 == 0 for u in users)
    assert len(statements) == 4 + 2  # 0, 3, 6, 9 alone; the others by parity


def test_a_large_partition_stays_whole_and_alone():
    ms = mutations(range(1), rows=MAX_BATCH + 5) + mutations(range(1, 4))
    statements = group_statements(ms, bind, one_replica_set)
    assert sorted(len(flat([s])) for s in statements) == [3, 5, MAX_BATCH]
    big = [s for s in statements if len(partitions_of(s)) == 1 and len(flat([s])) > 3]
    assert all(partitions_of(s) == {INSERT.bind((0, "")).routing_key} for s in big)


def test_every_mutation_is_sent_exactly_once():
    ms = mutations(range(40), rows=3) + mutations(range(5), rows=MAX_BATCH + 1, body="z")
    sent = flat(group_statements(ms, bind, one_replica_set))
    assert Counter(sent) == Counter(tuple(bind(m).values) for m in ms)
