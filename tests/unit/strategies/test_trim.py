"""Bounded feeds converge: trimming with a small cap, on the last-write-wins model.

The writer's own programs run on ``lww.Store`` with ``fanout.trimmed`` (as the
``Expander`` runs them), a cap of ``CAP`` rows and a trim due on every insert (slack 0)
or every few. Properties (docs/events.md, "Bounded feeds"):

- in histories where no row ever has to leave a feed (posts, follows, edits, likes,
  comments), any shuffled, duplicated, interleaved delivery ends with each feed holding
  exactly the newest ``CAP`` rows of the expected feed, and the index exactly their
  followed authors' rows: trims never cut a row of the newest ``CAP``, and replayed or
  late rows below the trim line stay dead;
- in any history (unfollows, deletes, moved follows too) no feed holds a row outside the
  expected feed, none holds more than ``CAP`` rows, and the index above a feed's oldest
  row is exactly the feed's followed rows;
- a trim is one range tombstone on the feed (and one per author on the index), never one
  per row.
"""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as hs

from feedline import fanout
from feedline import statements as st
from tests.unit.strategies.events import T0, typed
from tests.unit.strategies.history import (
    USERS,
    Source,
    create_users,
    edit_shard,
    expected_feeds,
    histories,
    post,
    toggle_comment,
    toggle_follow,
    toggle_like,
)
from tests.unit.strategies.lww import Store, apply_all, apply_concurrently
from tests.unit.strategies.test_convergence import WINDOW_MS, in_lsn_order, plans

CAP = 3


def trims(slack: float = 0.0) -> fanout.FeedTrims:
    """Return the writer's trim policy with a small cap (slack 0: due on every insert)."""
    return fanout.FeedTrims(CAP, slack, rnd=random.Random(0))


def follow(src: Source, a: int, b: int) -> None:
    if (a, b) not in src.follows:
        toggle_follow(src, a, b)


user = hs.sampled_from(USERS)
pick = hs.integers(0, 50)
growing = hs.one_of(
    hs.tuples(hs.just(follow), user, user),
    hs.tuples(hs.just(post), user),
    hs.tuples(hs.just(post), user),
    hs.tuples(hs.just(post), user),
    hs.tuples(hs.just(edit_shard), pick, hs.just("body")),
    hs.tuples(hs.just(toggle_comment), pick, user),
    hs.tuples(hs.just(toggle_like), pick, user),
)


@hs.composite
def growing_histories(draw, max_actions: int = 25) -> Source:
    """Draw a history in which no row ever has to leave a feed (no unfollow, no delete)."""
    src = Source()
    create_users(src)
    for fn, *args in draw(hs.lists(growing, max_size=max_actions)):
        fn(src, *args)
    return src


@hs.composite
def deliveries(draw, source):
    src = draw(source)
    dups = draw(hs.lists(hs.sampled_from(src.events), max_size=len(src.events) // 2))
    return src, draw(hs.permutations(src.events + dups))


def newest(src: Source, cap: int = CAP) -> dict[int, set[int]]:
    """Return the newest ``cap`` shards of each user's expected feed."""
    order = {sid: (row["created_at"], sid) for sid, row in src.shards.items()}
    return {
        u: set(sorted(feed, key=order.__getitem__, reverse=True)[:cap])
        for u, feed in expected_feeds(src, WINDOW_MS).items()
    }


def feeds(store: Store) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {u: set() for u in USERS}
    for u, _, sid in store.rows("feed_by_user"):
        out[u].add(sid)
    return out


def index_above_oldest(store: Store) -> dict[int, set[int]]:
    """Return each feed's index rows at or above its oldest feed row (those below the
    feed's trim line are dead: nothing reads a feed row back from them)."""
    oldest = {}
    for u, created, sid in store.rows("feed_by_user"):
        oldest[u] = min(oldest.get(u, (created, sid)), (created, sid))
    out: dict[int, set[int]] = {u: set() for u in USERS}
    for u, _author, created, sid in store.rows("feed_by_user_author"):
        if u in oldest and (created, sid) >= oldest[u]:
            out[u].add(sid)
    return out


def followed_rows(store: Store) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {u: set() for u in USERS}
    for (u, _, sid), row in store.rows("feed_by_user").items():
        if row["author_id"] != u:
            out[u].add(sid)
    return out


@settings(max_examples=300, deadline=None)
@given(deliveries(growing_histories()))
def test_any_delivery_keeps_exactly_the_newest_cap_rows(case):
    src, delivered = case
    store = apply_all(Store(), plans(delivered), window_ms=WINDOW_MS, trims=trims())
    assert feeds(store) == newest(src)
    assert index_above_oldest(store) == followed_rows(store)


@settings(max_examples=300, deadline=None)
@given(deliveries(growing_histories(max_actions=15)), hs.randoms(use_true_random=False))
def test_concurrent_writers_keep_exactly_the_newest_cap_rows(case, rnd):
    src, delivered = case
    store = apply_concurrently(
        Store(),
        plans(delivered),
        rnd.randrange,
        shuffle=lambda ms: rnd.sample(ms, len(ms)),
        window_ms=WINDOW_MS,
        trims=trims(),
        chunk=1,
    )
    assert feeds(store) == newest(src)
    assert index_above_oldest(store) == followed_rows(store)


@settings(max_examples=300, deadline=None)
@given(deliveries(histories(max_actions=20)), hs.randoms(use_true_random=False))
def test_with_removals_feeds_stay_inside_the_expected_feed_and_under_the_cap(case, rnd):
    """Unfollows, deletes and moved follows can leave a trimmed feed short of the newest
    CAP (a trimmed row does not come back), but never with a row outside the expected
    feed, never over the cap, and never with an index that disagrees with the feed."""
    src, delivered = case
    store = apply_concurrently(
        Store(),
        plans(delivered),
        rnd.randrange,
        shuffle=lambda ms: rnd.sample(ms, len(ms)),
        window_ms=WINDOW_MS,
        trims=trims(),
    )
    expected = expected_feeds(src, WINDOW_MS)
    for u, feed in feeds(store).items():
        assert feed <= expected[u]
        assert len(feed) <= CAP
    assert index_above_oldest(store) == followed_rows(store)


@settings(max_examples=200, deadline=None)
@given(deliveries(growing_histories()))
def test_with_slack_a_feed_holds_the_newest_rows_and_at_most_cap_plus_slack(case):
    """Trimming every few inserts: each feed is a prefix of the expected feed (newest
    first, no gap), holds at least the newest CAP and at most CAP + every rows."""
    src, delivered = case
    policy = fanout.FeedTrims(CAP, 1.0, rnd=random.Random(1))  # due every 3 rows
    store = apply_all(Store(), plans(delivered), window_ms=WINDOW_MS, trims=policy)
    order = {sid: (row["created_at"], sid) for sid, row in src.shards.items()}
    for u, feed in feeds(store).items():
        want = sorted(expected_feeds(src, WINDOW_MS)[u], key=order.__getitem__, reverse=True)
        assert sorted(feed, key=order.__getitem__, reverse=True) == want[: len(feed)]
        assert min(len(want), CAP) <= len(feed) <= CAP + policy.every


def ms(n: int) -> timedelta:
    return timedelta(milliseconds=n)


def test_a_trim_is_one_range_tombstone_and_replays_below_the_line_stay_dead():
    """Six posts into a follower's feed with a cap of three: each trim writes one range
    tombstone on the feed and one on the author's index slice, no row tombstone; then
    every create is replayed (a consumer rewind) and the trimmed tail stays trimmed."""
    src = Source()
    src.emit("followers", "c", after=typed("followers", follower_id=2, followee_id=1))
    for i in range(6):
        row = typed("shards", id=10 + i, author_id=1, created_at=T0 + ms(10 * i))
        src.emit("shards", "c", after=row)
    events = in_lsn_order(src)
    store = apply_all(Store(), plans(events), window_ms=WINDOW_MS * 1000, trims=trims())
    assert feeds(store)[2] == {15, 14, 13}
    cuts = [(t, k) for kind, t, k, _ in store.log if kind == "delete_below" and k[0] == 2]
    assert cuts == [
        c
        for n in range(3)
        for c in (
            ("feed_by_user", (2, T0 + ms(10 * n), 10 + n)),
            ("feed_by_user_author", (2, 1, T0 + ms(10 * n), 10 + n)),
        )
    ]
    assert [k for kind, *k in store.log if kind == "delete" and k[1][0] == 2] == []
    apply_all(store, plans(events[1:]), window_ms=WINDOW_MS * 1000, trims=trims())
    assert feeds(store)[2] == {15, 14, 13}
    assert {k[3] for k in store.rows("feed_by_user_author")} == {15, 14, 13}


def test_a_new_follow_may_backfill_below_the_line_and_its_trim_cuts_it():
    """A follow newer than the trim carries a higher LSN, so its backfilled rows outlive
    the old trim's tombstone; the backfill counts as writes and the trim it makes due
    cuts the feed back to the newest CAP (and the index with it)."""
    src = Source()
    src.emit("followers", "c", after=typed("followers", follower_id=2, followee_id=1))
    for i in range(4):
        src.emit("shards", "c", after=typed("shards", id=10 + i, author_id=3, created_at=T0))
    for i in range(5):
        row = typed("shards", id=20 + i, author_id=1, created_at=T0 + ms(10 + i))
        src.emit("shards", "c", after=row)
    later = typed("followers", follower_id=2, followee_id=3, created_at=T0 + ms(20))
    src.emit("followers", "c", after=later)
    events = in_lsn_order(src)
    policy = trims()
    store = apply_all(Store(), plans(events[:-1]), window_ms=WINDOW_MS * 1000, trims=policy)
    assert feeds(store)[2] == {24, 23, 22}
    apply_all(store, plans(events[-1:]), window_ms=WINDOW_MS * 1000, trims=policy)
    assert feeds(store)[2] == {24, 23, 22}
    assert {(k[1], k[3]) for k in store.rows("feed_by_user_author")} == {
        (1, 24),
        (1, 23),
        (1, 22),
    }


def test_without_trims_the_feed_keeps_everything():
    """The counter-example: the same posts without the trim policy leave every row."""
    src = Source()
    src.emit("followers", "c", after=typed("followers", follower_id=2, followee_id=1))
    for i in range(6):
        row = typed("shards", id=10 + i, author_id=1, created_at=T0 + ms(10 * i))
        src.emit("shards", "c", after=row)
    store = apply_all(Store(), plans(in_lsn_order(src)), window_ms=WINDOW_MS * 1000)
    assert len(feeds(store)[2]) == 6


def test_trim_statements_are_slices_below_a_clustering_position():
    assert st.get(st.DELETE_FEED_BELOW).cql == (
        "DELETE FROM feed_by_user USING TIMESTAMP ? "
        "WHERE user_id = ? AND (created_at, shard_id) <= (?, ?)"
    )
    index = st.get(st.DELETE_FEED_INDEX_BELOW)
    assert index.cql.endswith(
        "WHERE user_id = ? AND author_id = ? AND (created_at, shard_id) <= (?, ?)"
    )
    assert index.bind_values((2, 1, T0, 10), 99) == (99, 2, 1, T0, 10)
    assert index.partition((2, 1, T0, 10)) == ("feed_by_user", 2)


def test_an_unfollow_or_a_delete_after_a_trim_leaves_nothing_and_touches_no_trimmed_row():
    """The trim cut the index with the feed, so an unfollow reads (and tombstones) only
    the rows still in the feed, and a deleted trimmed shard's purge finds no index row:
    no tombstone goes below the line, and nothing trimmed is written again."""
    src = Source()
    edge = typed("followers", follower_id=2, followee_id=1)
    src.emit("followers", "c", after=edge)
    rows = [typed("shards", id=10 + i, author_id=1, created_at=T0 + ms(10 * i)) for i in range(6)]
    for row in rows:
        src.emit("shards", "c", after=row)
    src.emit("shards", "d", before=rows[0])
    src.emit("followers", "d", before=edge)
    *posts, delete, unfollow = in_lsn_order(src)
    policy, window = trims(), WINDOW_MS * 1000
    store = apply_all(Store(), plans(posts), window_ms=window, trims=policy)
    assert feeds(store)[2] == {15, 14, 13}
    store.log.clear()
    apply_all(store, plans([delete, unfollow]), window_ms=window, trims=policy)
    assert feeds(store)[2] == set() and store.rows("feed_by_user_author") == {}
    mine = [(kind, table, key) for kind, table, key, _ in store.log if key[0] == 2]
    assert sorted(key[-1] for _, table, key in mine if table == "feed_by_user") == [13, 14, 15]
    assert [key for _, table, key in mine if table == "feed_by_user_author"] == [(2, 1)]
    assert all(kind != "insert" for kind, _, key, _ in store.log if key[0] == 2)
