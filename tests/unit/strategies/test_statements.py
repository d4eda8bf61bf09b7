"""The CQL registry: shapes, timestamp placement, partitions, and agreement with the schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedline import statements as st
from feedline.errors import AdaptError
from feedline.strategies.base import Mutation

MIGRATIONS = sorted((Path(st.__file__).parent / "migrations" / "cassandra").glob("*.cql"))
CQL = "\n".join(p.read_text() for p in MIGRATIONS)


def _schema_columns() -> dict[str, list[str]]:
    tables = {}
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\)", CQL, re.S):
        tables[name] = [
            line.split()[0]
            for line in body.strip().splitlines()
            if line.strip() and not line.strip().startswith("PRIMARY KEY")
        ]
    return tables


def test_tables_mirror_the_cassandra_migration():
    schema = _schema_columns()
    assert set(schema) == set(st.TABLES)
    for name, table in st.TABLES.items():
        assert sorted(table.columns) == sorted(schema[name]), name
        pk = "(({}), {})".format(", ".join(table.partition_key), ", ".join(table.clustering))
        if table.clustering:
            assert f"PRIMARY KEY {pk}" in CQL, name


def test_every_write_is_insert_or_delete_with_using_timestamp():
    for s in st.STATEMENTS.values():
        assert "?" in s.cql and "'" not in s.cql  # parameterised, no literals
        if s.is_write:
            assert s.cql.count("USING TIMESTAMP ?") == 1
            assert s.cql.count("?") == len(s.binds) + 1
            assert s.cql.split()[0] in ("INSERT", "DELETE")
        else:
            assert s.cql.startswith("SELECT ") and s.cql.count("?") == len(s.binds)


def test_timestamp_is_last_for_insert_and_first_for_delete():
    ins = st.get(st.UPSERT_LIKE)
    assert ins.cql == (
        "INSERT INTO likes_by_shard (shard_id, user_id, created_at) "
        "VALUES (?, ?, ?) USING TIMESTAMP ?"
    )
    assert ins.bind_values((1, 2, "t"), 99) == (1, 2, "t", 99)
    dele = st.get(st.DELETE_FEED_ITEM)
    assert dele.cql == (
        "DELETE FROM feed_by_user USING TIMESTAMP ? "
        "WHERE user_id = ? AND created_at = ? AND shard_id = ?"
    )
    assert dele.bind_values((5, "t", 7), 99) == (99, 5, "t", 7)
    assert st.bind_values(Mutation(st.DELETE_LIKE, (1, 2), 7, ("likes_by_shard", 1))) == (7, 1, 2)


def test_deletes_bind_the_whole_primary_key_or_one_range_prefix():
    for s in st.STATEMENTS.values():
        if s.kind == "delete" and s.name != st.DELETE_FEED_INDEX_AUTHOR:
            assert s.binds == st.TABLES[s.table].primary_key
    whole = st.get(st.DELETE_FEED_INDEX_AUTHOR)
    assert whole.cql == (
        "DELETE FROM feed_by_user_author USING TIMESTAMP ? WHERE user_id = ? AND author_id = ?"
    )
    assert whole.bind_values((5, 1), 99) == (99, 5, 1)


def test_a_delete_of_less_than_a_partition_key_prefix_is_refused():
    with pytest.raises(AssertionError, match="prefix"):
        st._delete("bad", "feed_by_user_author", ("author_id",))
    with pytest.raises(AssertionError, match="prefix"):
        st._delete("bad", "feed_by_user_author", ("user_id", "created_at"))


def test_partition_is_table_and_partition_key():
    assert st.get(st.INSERT_FEED_ITEM).partition((5, "t", 7, 1)) == ("feed_by_user", 5)
    assert st.get(st.UPSERT_FOLLOWING).partition((2, 1, "t", 9)) == ("following_by_user", 2)


def test_a_feed_row_and_its_index_row_share_one_batch():
    """Same partition key, batched together: one mutation on each replica."""
    group = ("feed_by_user", 5)
    assert st.get(st.INSERT_FEED_INDEX).partition((5, 1, "t", 7)) == group
    assert st.get(st.DELETE_FEED_INDEX).partition((5, 1, "t", 7)) == group
    assert st.get(st.DELETE_FEED_INDEX_AUTHOR).partition((5, 1)) == group
    assert st.get(st.DELETE_FEED_ITEM).partition((5, "t", 7)) == group
    index = st.TABLES["feed_by_user_author"]
    assert index.partition_key == st.TABLES["feed_by_user"].partition_key
    assert index.clustering == ("author_id", "created_at", "shard_id")


def test_index_statements():
    assert st.get(st.INSERT_FEED_INDEX).cql == (
        "INSERT INTO feed_by_user_author (user_id, author_id, created_at, shard_id) "
        "VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
    )
    assert st.get(st.DELETE_FEED_INDEX).bind_values((5, 1, "t", 7), 99) == (99, 5, 1, "t", 7)
    assert st.get(st.SELECT_FEED_INDEX).cql == (
        "SELECT created_at, shard_id FROM feed_by_user_author WHERE user_id = ? AND author_id = ?"
    )


def _restrictions(s: st.Statement) -> list[tuple[str, str]]:
    where = s.cql.split(" WHERE ", 1)[1]
    assert " LIMIT " not in where or where.endswith("LIMIT ?")
    where = where.removesuffix(" LIMIT ?")
    out = []
    for cond in where.split(" AND "):
        column, op, marker = cond.split()
        assert marker == "?", cond
        out.append((column, op))
    return out


@pytest.mark.parametrize("name", [n for n, s in st.STATEMENTS.items() if s.kind == "select"])
def test_every_read_is_a_slice_of_one_partition_without_filtering(name):
    """Issue 15, defect 5: Unbackfill's read scanned the follower's whole feed partition
    (``author_id = ? ALLOW FILTERING``). Every read here names its partition and restricts
    a clustering prefix (equalities, then at most one range), which Cassandra serves from
    the clustering index: no filtering, no reading rows it does not return."""
    s = st.get(name)
    assert "ALLOW FILTERING" not in s.cql
    table = st.TABLES[s.table]
    conds = _restrictions(s)
    if len(conds) >= 2 and conds[-1][0] == conds[-2][0]:
        # the range column bounded on both sides: still one slice (a fan-out page's recheck)
        assert {conds[-2][1][0], conds[-1][1][0]} == {">", "<"}, name
        conds = conds[:-1]
    columns = [c for c, _ in conds]
    assert len(set(columns)) == len(columns), name
    assert columns[: len(table.partition_key)] == list(table.partition_key), name
    assert all(op == "=" for _, op in conds[: len(table.partition_key)]), name
    clustering = conds[len(table.partition_key) :]
    assert [c for c, _ in clustering] == list(table.clustering[: len(clustering)]), name
    assert all(op == "=" for _, op in clustering[:-1]), name


def test_wrong_arity_or_timestamp_and_unknown_names_are_adapt_errors():
    with pytest.raises(AdaptError, match="binds"):
        st.get(st.UPSERT_LIKE).bind_values((1, 2), 5)
    with pytest.raises(AdaptError, match="timestamp"):
        st.get(st.UPSERT_LIKE).bind_values((1, 2, 3), None)
    with pytest.raises(AdaptError, match="no CQL statement"):
        st.get("drop_everything")
