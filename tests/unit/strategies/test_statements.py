"""The CQL registry: shapes, timestamp placement, partitions, and agreement with the schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedline import statements as st
from feedline.errors import AdaptError
from feedline.strategies.base import Mutation

CQL = (Path(st.__file__).parent / "migrations" / "cassandra" / "0001_init.cql").read_text()


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


def test_deletes_bind_the_whole_primary_key():
    for s in st.STATEMENTS.values():
        if s.kind == "delete":
            assert s.binds == st.TABLES[s.table].primary_key


def test_partition_is_table_and_partition_key():
    assert st.get(st.INSERT_FEED_ITEM).partition((5, "t", 7, 1)) == ("feed_by_user", 5)
    assert st.get(st.UPSERT_FOLLOWING).partition((2, 1, "t", 9)) == ("following_by_user", 2)


def test_wrong_arity_or_timestamp_and_unknown_names_are_adapt_errors():
    with pytest.raises(AdaptError, match="binds"):
        st.get(st.UPSERT_LIKE).bind_values((1, 2), 5)
    with pytest.raises(AdaptError, match="timestamp"):
        st.get(st.UPSERT_LIKE).bind_values((1, 2, 3), None)
    with pytest.raises(AdaptError, match="no CQL statement"):
        st.get("drop_everything")
