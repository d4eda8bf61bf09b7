"""Every read of the read model is derived from the table definitions the pipeline writes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from feedline.readmodel import formats, queries
from feedline.statements import TABLES


def test_list_pages_are_clustering_ranges_in_the_lists_order():
    assert queries.head(formats.FEED) == (
        "SELECT created_at, shard_id, author_id FROM feed_by_user WHERE user_id = ? LIMIT ?"
    )
    assert queries.after(formats.FEED) == (
        "SELECT created_at, shard_id, author_id FROM feed_by_user WHERE user_id = ? "
        "AND (created_at, shard_id) < (?, ?) LIMIT ?"
    )
    assert queries.after(formats.COMMENTS).endswith(
        "WHERE shard_id = ? AND (created_at, comment_id) > (?, ?) LIMIT ?"
    )
    assert queries.after(formats.FOLLOWERS) == (
        "SELECT follower_id, created_at FROM followers_by_user "
        "WHERE user_id = ? AND follower_id > ? LIMIT ?"
    )


def test_whole_partitions_and_objects_read_every_column_the_pipeline_writes():
    assert queries.partition("users_by_id") == (
        "SELECT user_id, handle, follower_count, following_count, shard_count, created_at "
        "FROM users_by_id WHERE user_id = ?"
    )
    assert queries.web()["shard"] == (
        "SELECT shard_id, author_id, body, like_count, comment_count, created_at "
        "FROM shards_by_id WHERE shard_id IN ?"
    )
    assert (
        queries.partition_keys("likes_by_shard") == "SELECT DISTINCT shard_id FROM likes_by_shard"
    )


def test_web_reads_name_every_list_and_object_kind():
    lists = {s.name for s in formats.LISTS}
    pages = {f"{name}_after" for name in lists}
    pull = {"pull_following", "following_in"}  # the hybrid fan-out's merge
    stream = set(queries.STREAM)  # the live stream: whom a reader follows
    assert set(queries.web()) == lists | pages | set(formats.OBJECT_TABLES) | pull | stream


@pytest.mark.parametrize("spec", formats.LISTS, ids=lambda s: s.name)
def test_a_lists_columns_exist_and_lead_with_its_position(spec):
    table = TABLES[spec.table]
    assert set(spec.columns) <= set(table.columns)
    sample = {"created_at": formats.from_ms(5), "body": "b"}
    row = SimpleNamespace(**{c: sample.get(c, 7) for c in spec.columns})
    assert len(spec.row(row)) == len(spec.columns)
    assert spec.pos == len(table.clustering) and spec.pos <= len(spec.columns)
