"""Each strategy, each op: exactly which mutations, expansions and invalidations come out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from feedline.errors import AdaptError
from feedline.notices import AuthorNotice, EdgeNotice, ShardNotice
from feedline.readmodel.formats import to_ms
from feedline.strategies.base import (
    TERMINAL,
    Backfill,
    FanOutShard,
    ModeCheck,
    Mutation,
    Plan,
    PurgeShard,
    Unbackfill,
)
from feedline.strategies.comments import CommentsStrategy
from feedline.strategies.factory import SchemaAdapterStrategyFactory
from feedline.strategies.followers import FollowersStrategy
from feedline.strategies.likes import LikesStrategy
from feedline.strategies.shards import ShardsStrategy
from feedline.strategies.users import UsersStrategy
from tests.unit.strategies.events import T0, event, typed

L = 5000


def m(statement, params, ts, *partition):
    return Mutation(statement, params, ts, partition)


# users -------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["c", "r", "u"])
def test_users_upsert_whole_profile_at_lsn(op):
    u = typed("users")
    plan = UsersStrategy().plan(event("users", op, before=u if op == "u" else None, after=u, lsn=L))
    assert plan == Plan(
        mutations=(m("upsert_user", (1, "ada", 2, 3, 4, T0), L, "users_by_id", 1),),
        # A snapshot row may be a big account already: its mode is checked.
        expansions=(ModeCheck(1, 2, L),) if op == "r" else (),
        invalidations=("fl:user:1",),
    )


def test_users_follower_count_change_checks_the_mode():
    """A changed follower count asks the writer to check the author's push/pull mode."""
    before, after = typed("users"), {**typed("users"), "follower_count": 9}
    plan = UsersStrategy().plan(event("users", "u", before=before, after=after, lsn=L))
    assert plan.expansions == (ModeCheck(1, 9, L),)


def test_users_delete_at_lsn():
    plan = UsersStrategy().plan(event("users", "d", before=typed("users"), lsn=L))
    assert plan == Plan(
        mutations=(m("delete_user", (1,), L, "users_by_id", 1),), invalidations=("fl:user:1",)
    )


# shards ------------------------------------------------------------------------------

SHARD_KEYS = ("fl:shard:10", "fl:shards:1", "fl:feed:1")


@pytest.mark.parametrize("op", ["c", "r"])
def test_shards_create_writes_rows_author_feed_and_fans_out(op):
    plan = ShardsStrategy().plan(event("shards", op, after=typed("shards"), lsn=L))
    assert plan == Plan(
        mutations=(
            m("upsert_shard", (10, 1, "hello", 0, 0, T0), L, "shards_by_id", 10),
            m("insert_author_shard", (1, T0, 10), L, "shards_by_author", 1),
            m("insert_feed_item", (1, T0, 10, 1), L, "feed_by_user", 1),
        ),
        expansions=(FanOutShard(author_id=1, shard_id=10, created_at=T0, lsn=L),),
        invalidations=SHARD_KEYS,
        notices=(ShardNotice(1, 10, to_ms(T0.replace(tzinfo=None))),),  # live streams
    )


def test_shards_update_writes_content_and_counts_only():
    before, after = typed("shards"), typed("shards", body="edited", like_count=3, comment_count=1)
    plan = ShardsStrategy().plan(event("shards", "u", before=before, after=after, lsn=L))
    assert plan == Plan(
        mutations=(m("update_shard", (10, "edited", 3, 1), L, "shards_by_id", 10),),
        invalidations=("fl:shard:10",),
    )


def test_shards_update_without_before_image_is_still_planned():
    plan = ShardsStrategy().plan(event("shards", "u", after=typed("shards", like_count=9), lsn=L))
    assert plan.mutations[0].params == (10, "hello", 9, 0)


@pytest.mark.parametrize("moved", [{"author_id": 2}, {"created_at": T0 + timedelta(seconds=1)}])
def test_shards_update_moving_placement_is_a_poison_event(moved):
    ev = event("shards", "u", before=typed("shards"), after=typed("shards", **moved), lsn=L)
    with pytest.raises(AdaptError, match="not supported"):
        ShardsStrategy().plan(ev)


def test_shards_delete_removes_everything_at_terminal_and_purges_feeds():
    plan = ShardsStrategy().plan(event("shards", "d", before=typed("shards"), lsn=L))
    assert plan == Plan(
        mutations=(
            m("delete_shard", (10,), TERMINAL, "shards_by_id", 10),
            m("delete_author_shard", (1, T0, 10), TERMINAL, "shards_by_author", 1),
            m("delete_feed_item", (1, T0, 10), TERMINAL, "feed_by_user", 1),
        ),
        expansions=(PurgeShard(author_id=1, shard_id=10, created_at=T0),),
        invalidations=SHARD_KEYS,
        notices=(AuthorNotice(1),),
    )


# followers ---------------------------------------------------------------------------

EDGE_KEYS = ("fl:followers:1", "fl:following:2", "fl:feed:2")


@pytest.mark.parametrize("op", ["c", "r", "u"])
def test_follow_writes_both_edges_with_edge_lsn_then_backfills(op):
    e = typed("followers")
    plan = FollowersStrategy().plan(event("followers", op, after=e, lsn=L))
    assert plan == Plan(
        mutations=(
            m("upsert_follower", (1, 2, T0, L), L, "followers_by_user", 1),
            m("upsert_following", (2, 1, T0, L), L, "following_by_user", 2),
        ),
        expansions=(Backfill(follower_id=2, followee_id=1, lsn=L, created_at=T0),),
        invalidations=EDGE_KEYS,
        notices=(EdgeNotice(follower_id=2, followee_id=1),),
    )


def test_unfollow_deletes_both_edges_at_lsn_then_unbackfills():
    plan = FollowersStrategy().plan(event("followers", "d", before=typed("followers"), lsn=L))
    assert plan == Plan(
        mutations=(
            m("delete_follower", (1, 2), L, "followers_by_user", 1),
            m("delete_following", (2, 1), L, "following_by_user", 2),
        ),
        expansions=(Unbackfill(follower_id=2, followee_id=1, lsn=L),),
        invalidations=EDGE_KEYS,
        notices=(EdgeNotice(follower_id=2, followee_id=1),),
    )


# comments ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["c", "r", "u"])
def test_comment_upsert_at_lsn(op):
    c = typed("comments")
    plan = CommentsStrategy().plan(
        event("comments", op, before=c if op == "u" else None, after=c, lsn=L)
    )
    assert plan == Plan(
        mutations=(m("upsert_comment", (10, T0, 100, 2, "hi"), L, "comments_by_shard", 10),),
        invalidations=("fl:comments:10",),
    )


def test_comment_update_that_moves_removes_the_old_position_at_lsn():
    before, after = typed("comments"), typed("comments", shard_id=11)
    plan = CommentsStrategy().plan(event("comments", "u", before=before, after=after, lsn=L))
    assert plan.mutations == (
        m("upsert_comment", (11, T0, 100, 2, "hi"), L, "comments_by_shard", 11),
        m("delete_comment", (10, T0, 100), L, "comments_by_shard", 10),
    )
    assert plan.invalidations == ("fl:comments:11", "fl:comments:10")


def test_comment_delete_at_terminal():
    plan = CommentsStrategy().plan(event("comments", "d", before=typed("comments"), lsn=L))
    assert plan == Plan(
        mutations=(m("delete_comment", (10, T0, 100), TERMINAL, "comments_by_shard", 10),),
        invalidations=("fl:comments:10",),
    )


# likes -------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["c", "r", "u"])
def test_like_upsert_at_lsn(op):
    plan = LikesStrategy().plan(event("likes", op, after=typed("likes"), lsn=L))
    assert plan == Plan(
        mutations=(m("upsert_like", (10, 2, T0), L, "likes_by_shard", 10),),
        invalidations=("fl:shard:10",),
    )


def test_unlike_at_lsn_not_terminal():
    plan = LikesStrategy().plan(event("likes", "d", before=typed("likes"), lsn=L))
    assert plan == Plan(
        mutations=(m("delete_like", (10, 2), L, "likes_by_shard", 10),),
        invalidations=("fl:shard:10",),
    )


# every strategy ----------------------------------------------------------------------

TABLES = ["users", "followers", "shards", "comments", "likes"]


@pytest.mark.parametrize("table", TABLES)
def test_tombstones_plan_nothing(table):
    key_row = typed(table)
    ev = event(table, "c", after=key_row)
    tomb = type(ev)(table, "t", ev.key, None, None, lsn=0, ts_ms=0)
    assert SchemaAdapterStrategyFactory().for_table(table).plan(tomb).empty


@pytest.mark.parametrize("table", TABLES)
def test_every_mutation_of_every_op_uses_lsn_or_terminal(table):
    strategy = SchemaAdapterStrategyFactory().for_table(table)
    for op in "crud":
        r = typed(table)
        ev = event(
            table, op, before=r if op in "ud" else None, after=None if op == "d" else r, lsn=L
        )
        for mut in strategy.plan(ev).mutations:
            assert mut.timestamp in (L, TERMINAL)


@pytest.mark.parametrize("table", TABLES)
def test_missing_images_and_wrong_tables_are_adapt_errors(table):
    strategy = SchemaAdapterStrategyFactory().for_table(table)
    ev = event(table, "c", after=typed(table))
    with pytest.raises(AdaptError):
        strategy.plan(type(ev)(table, "d", ev.key, None, None, lsn=L, ts_ms=0))
    with pytest.raises(AdaptError):
        strategy.plan(type(ev)(table, "x", ev.key, None, ev.after, lsn=L, ts_ms=0))
    with pytest.raises(AdaptError):
        strategy.plan(type(ev)(table, "c", ev.key, None, {"id": 1}, lsn=L, ts_ms=0))
    other = "likes" if table != "likes" else "users"
    with pytest.raises(AdaptError):
        strategy.plan(type(ev)(other, "c", ev.key, None, ev.after, lsn=L, ts_ms=0))
