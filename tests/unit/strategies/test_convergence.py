"""Replays and reorderings converge: the last-write-wins model of Cassandra, driven by plans.

A valid history is delivered in a random order with random duplicates (what at-least-once
delivery, a replay after a crash and independent topics can produce, and worse: even one
key's events are shuffled). Applying the plans of that delivery must leave exactly the state
that applying each event once, in LSN order, leaves; and that state must match the source.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as hs

from feedline.strategies.base import Plan
from feedline.strategies.factory import SchemaAdapterStrategyFactory
from tests.unit.strategies.events import T0, typed
from tests.unit.strategies.history import Source, expected_feeds, histories
from tests.unit.strategies.lww import Store, apply_all, apply_concurrently

FACTORY = SchemaAdapterStrategyFactory()


def plans(events, direct_only: bool = False) -> list[Plan]:
    out = [FACTORY.for_table(e.table).plan(e) for e in events]
    return [Plan(mutations=p.mutations) for p in out] if direct_only else out


@hs.composite
def deliveries(draw, max_actions: int = 25):
    """Draw a history and a shuffled, duplicated delivery of its events."""
    src = draw(histories(max_actions))
    dups = draw(hs.lists(hs.sampled_from(src.events), max_size=len(src.events) // 2))
    return src, draw(hs.permutations(src.events + dups))


def in_lsn_order(src: Source):
    return sorted((e for e in src.events if e.op != "t"), key=lambda e: e.lsn)


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_direct_mutations_converge_under_any_order_and_duplicates(case):
    src, delivered = case
    once = apply_all(Store(), plans(in_lsn_order(src), direct_only=True))
    shuffled = apply_all(Store(), plans(delivered, direct_only=True))
    assert shuffled.visible() == once.visible()


@settings(max_examples=300, deadline=None)
@given(histories())
def test_in_order_application_mirrors_the_source(src):
    store = apply_all(Store(), plans(in_lsn_order(src)))
    assert {pk[0]: r["handle"] for pk, r in store.rows("users_by_id").items()} == {
        u: r["handle"] for u, r in src.users.items()
    }
    assert {
        pk[0]: (r["like_count"], r["comment_count"]) for pk, r in store.rows("shards_by_id").items()
    } == {s: (r["like_count"], r["comment_count"]) for s, r in src.shards.items()}
    assert {pk[2] for pk in store.rows("comments_by_shard")} == set(src.comments)
    assert set(store.rows("likes_by_shard")) == set(src.likes)
    assert {(pk[1], pk[0]) for pk in store.rows("followers_by_user")} == set(src.follows)
    assert {(pk[0], pk[1]) for pk in store.rows("following_by_user")} == set(src.follows)
    feeds: dict[int, set[int]] = {u: set() for u in src.users}
    for user, _, sid in store.rows("feed_by_user"):
        feeds[user].add(sid)
    assert feeds == expected_feeds(src)


@settings(max_examples=500, deadline=None)
@given(deliveries())
def test_plans_with_expansions_converge_under_any_order_and_duplicates(case):
    src, delivered = case
    once = apply_all(Store(), plans(in_lsn_order(src)))
    shuffled = apply_all(Store(), plans(delivered))
    assert shuffled.visible() == once.visible()


def test_naive_expansions_leak_a_deleted_shard_into_a_feed():
    """Without re-validation a create replayed after its delete fans out into a new follower.

    Delivery: shard delete, then a follow, then the shard's (replayed) create. The purge
    read no followers, the backfill read no shards, and the late fan-out finds the new
    follower: a feed row of a deleted shard, with nothing to ever remove it.
    """
    src = Source()
    shard = typed("shards", id=10, author_id=1, created_at=T0)
    follow = typed("followers", follower_id=2, followee_id=1, created_at=T0 + timedelta(1))
    src.emit("shards", "c", after=shard)
    src.emit("followers", "c", after=follow)
    src.emit("shards", "d", before=shard)
    create, follow_ev, delete = (e for e in src.events if e.op != "t")
    delivered = [delete, follow_ev, create]

    naive = apply_all(Store(), plans(delivered), revalidate=False)
    assert (2, T0, 10) in naive.rows("feed_by_user")  # the leak
    fixed = apply_all(Store(), plans(delivered))
    assert fixed.rows("feed_by_user") == {}


@settings(max_examples=500, deadline=None)
@given(deliveries(max_actions=15), hs.randoms(use_true_random=False))
def test_concurrent_writers_converge_with_revalidation(case, rnd):
    """Every plan runs at once, their reads and writes interleaved at random."""
    src, delivered = case
    once = apply_all(Store(), plans(in_lsn_order(src)))
    mixed = apply_concurrently(Store(), plans(delivered), rnd.randrange)
    assert mixed.visible() == once.visible()


def test_naive_unbackfill_misses_a_shard_deleted_concurrently():
    """An unfollow and a shard delete racing: each removes the fact the other reads.

    The unfollow's Unbackfill reads the followee's shards after the delete removed S; the
    delete's PurgeShard reads followers after the unfollow removed F. Reading the follower's
    feed itself (what is actually there) finds the row.
    """
    src = Source()
    shard = typed("shards", id=10, author_id=1, created_at=T0)
    follow = typed("followers", follower_id=2, followee_id=1, created_at=T0)
    src.emit("followers", "c", after=follow)
    src.emit("shards", "c", after=shard)
    src.emit("followers", "d", before=follow)
    src.emit("shards", "d", before=shard)
    f, c, unf, d = (e for e in src.events if e.op != "t")
    # unfollow mutations, delete mutations, unfollow's read, delete's read, then the rest.
    schedule = iter([0, 1, 0, 1])

    def run(revalidate: bool) -> Store:
        store = apply_all(Store(), plans([f, c]), revalidate=revalidate)
        pick = lambda n: next(schedule, 0) % n  # noqa: E731
        return apply_concurrently(store, plans([unf, d]), pick, revalidate=revalidate)

    assert (2, T0, 10) in run(revalidate=False).rows("feed_by_user")  # leaked
    schedule = iter([0, 1, 0, 1])
    assert run(revalidate=True).rows("feed_by_user") == {}
