"""Replays and reorderings converge: the last-write-wins model of Cassandra, driven by plans.

A valid history is delivered in a random order with random duplicates (what at-least-once
delivery, a replay after a crash and independent topics can produce, and worse: even one
key's events are shuffled). Applying the plans of that delivery must leave exactly the state
that applying each event once, in LSN order, leaves; and that state must match the source,
feeds included (docs/events.md, "The expected feed"). Expansions run the pipeline's own
fan-out programs (``feedline.fanout``) on the model.

The backfill window is small (``WINDOW_MS``: a few actions of these histories), so that
follows come after shards both inside and outside their window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as hs

from feedline import fanout
from feedline import statements as st
from feedline.readmodel.merge import merge, window_start_ms, within
from feedline.strategies.base import ModeCheck, Plan, Unbackfill
from feedline.strategies.factory import SchemaAdapterStrategyFactory
from tests.unit.strategies.events import T0, typed
from tests.unit.strategies.history import (
    Source,
    create_users,
    expected_feeds,
    expected_index,
    histories,
    post,
    toggle_follow,
)
from tests.unit.strategies.lww import Store, apply_all, apply_concurrently, steps

FACTORY = SchemaAdapterStrategyFactory()
# Events of a history are 8 ms apart (history.Source.now): about the last two actions.
WINDOW_MS = 40
W = {"window_ms": WINDOW_MS}


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
    store = apply_all(Store(), plans(in_lsn_order(src)), **W)
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
    assert feeds_of(store) == expected_feeds(src, WINDOW_MS)
    assert index_of(store) == {k: v for k, v in expected_index(src, WINDOW_MS).items() if v}
    # Every feed delete found its row: no tombstone of a row that was never there.
    assert store.blind_deletes == []


def feeds_of(store: Store) -> dict[int, set[int]]:
    feeds: dict[int, set[int]] = {u: set() for u in (1, 2, 3, 4)}
    for user, _, sid in store.rows("feed_by_user"):
        feeds[user].add(sid)
    return feeds


def index_of(store: Store) -> dict[tuple[int, int], set[int]]:
    index: dict[tuple[int, int], set[int]] = {}
    for user, author, _, sid in store.rows("feed_by_user_author"):
        index.setdefault((user, author), set()).add(sid)
    return index


@settings(max_examples=500, deadline=None)
@given(deliveries())
def test_plans_with_expansions_converge_under_any_order_and_duplicates(case):
    src, delivered = case
    once = apply_all(Store(), plans(in_lsn_order(src)), **W)
    shuffled = apply_all(Store(), plans(delivered), **W)
    assert shuffled.visible() == once.visible()


def test_a_replayed_shard_older_than_the_window_stays_out_of_a_later_follow():
    """Issue 15, defect 4: fan-out ignored when the follow happened.

    A shard posted long before a follow is outside the follow's window: the backfill does
    not copy it, and replaying the shard's create (a consumer rewind, a group reset) must
    not fan it out into that follower's feed either. A recent one is in the window.
    """
    src = Source()
    old = typed("shards", id=10, author_id=1, created_at=T0)
    recent = typed("shards", id=11, author_id=1, created_at=T0 + timedelta(milliseconds=90))
    follow = typed("followers", follower_id=2, followee_id=1, created_at=T0 + timedelta(0, 0.1))
    src.emit("shards", "c", after=old)
    src.emit("shards", "c", after=recent)
    src.emit("followers", "c", after=follow)
    events = in_lsn_order(src)
    store = apply_all(Store(), plans(events), **W)
    assert feeds_of(store)[2] == {11}
    store.log.clear()
    apply_all(store, plans(events[:2]), **W)  # replay both creates
    assert feeds_of(store)[2] == {11}
    assert index_of(store) == {(2, 1): {11}}
    # Not even for a moment: the replayed old shard is not written into the feed at all.
    assert (2, T0, 10) not in {key for _, _, key, _ in store.log}


def _refollow_history() -> tuple[Source, list]:
    """A shard, a follow whose window holds it, an unfollow, a re-follow whose does not."""
    src = Source()
    shard = typed("shards", id=10, author_id=1, created_at=T0 + timedelta(milliseconds=100))
    first = typed("followers", follower_id=2, followee_id=1, created_at=T0 + ms(120))
    again = typed("followers", follower_id=2, followee_id=1, created_at=T0 + ms(200))
    src.emit("shards", "c", after=shard)
    src.emit("followers", "c", after=first)
    src.emit("followers", "d", before=first)
    src.emit("followers", "c", after=again)
    return src, in_lsn_order(src)


def ms(n: int) -> timedelta:
    return timedelta(milliseconds=n)


def test_fan_out_that_read_an_older_follow_undoes_a_row_the_new_window_excludes():
    """Fan-out reads the first follow; the unfollow (its read finds nothing yet) and the
    re-follow (whose window excludes the shard) run; then the fan-out writes at the first
    follow's LSN. Its re-validation must compare the window, not only find an edge."""
    src, (create, follow, unfollow, refollow) = _refollow_history()
    store = apply_all(Store(), plans([follow]), **W)
    shard = steps(store, plans([create])[0], **W)
    for _ in range(4):  # its three own writes, then its read of the followers
        next(shard)
    apply_all(store, plans([unfollow, refollow]), **W)
    for _ in shard:
        pass
    assert feeds_of(store)[2] == expected_feeds(src, WINDOW_MS)[2] == set()
    assert index_of(store) == {}


def test_backfill_that_read_before_a_refollow_undoes_a_row_the_new_window_excludes():
    """The same race from the follow's side: its backfill read the shard, the unfollow and
    the re-follow ran before its writes landed."""
    _src, (create, follow, unfollow, refollow) = _refollow_history()
    store = apply_all(Store(), plans([create]), **W)
    backfill = steps(store, plans([follow])[0], **W)
    for _ in range(4):  # its two own writes, then its two reads
        next(backfill)
    apply_all(store, plans([unfollow, refollow]), **W)
    for _ in backfill:
        pass
    assert feeds_of(store)[2] == set()
    assert index_of(store) == {}


def test_backfill_that_read_a_shard_deleted_before_its_write_undoes_the_row():
    """The purge side of a backfill's race (issue 17: re-validation is left out only when a
    step wrote nothing): the backfill read the shard, the delete and its purge (whose index
    read finds nothing yet) ran, then the backfill wrote. Only its re-validation, which
    finds the shard gone, removes the row; without it the row stays for good."""
    src = Source()
    shard = typed("shards", id=10, author_id=1, created_at=T0)
    follow = typed("followers", follower_id=2, followee_id=1, created_at=T0)
    src.emit("shards", "c", after=shard)
    src.emit("followers", "c", after=follow)
    src.emit("shards", "d", before=shard)
    create, follow_ev, delete = (e for e in src.events if e.op != "t")
    for revalidate, left in ((True, set()), (False, {10})):
        store = apply_all(Store(), plans([create]), **W)
        backfill = steps(store, plans([follow_ev])[0], revalidate=revalidate, **W)
        for _ in range(4):  # its two own writes, then its two reads
            next(backfill)
        apply_all(store, plans([delete]), **W)
        for _ in backfill:
            pass
        assert feeds_of(store)[2] == left
    assert expected_feeds(src, WINDOW_MS)[2] == set()


def test_replayed_deletes_tombstone_no_follower_feed():
    """Issue 15, defect 5: a shard delete or an unfollow replayed (or arriving when the row
    is not there) writes no tombstone into the follower's feed: only rows read from the
    index are deleted, and an empty index slice gets no range tombstone either."""
    src = Source()
    follow = typed("followers", follower_id=2, followee_id=1, created_at=T0)
    shard = typed("shards", id=10, author_id=1, created_at=T0 + ms(10))
    src.emit("followers", "c", after=follow)
    src.emit("shards", "c", after=shard)
    src.emit("shards", "d", before=shard)
    src.emit("followers", "d", before=follow)
    follow_ev, create, delete, unfollow = in_lsn_order(src)
    store = apply_all(Store(), plans([follow_ev, create, delete]), **W)
    assert feed_log(store, "delete") == [
        ("feed_by_user", (1, T0 + ms(10), 10)),  # the author's own row
        ("feed_by_user", (2, T0 + ms(10), 10)),
        ("feed_by_user_author", (2, 1, T0 + ms(10), 10)),
    ]
    for event in (delete, unfollow, unfollow):  # a replayed delete, an unfollow, its replay
        store.log.clear()
        apply_all(store, plans([event]), **W)
        assert feed_log(store, "delete", user=2) == []
    assert store.blind_deletes == [("feed_by_user", (1, T0 + ms(10), 10))]  # own row, replayed


def test_a_moved_follow_trims_what_its_new_window_excludes():
    """A follow's created_at updated by hand (the API never does): the window moves with
    it, and the backfill of the update deletes the rows the new window excludes."""
    src = Source()
    shard = typed("shards", id=10, author_id=1, created_at=T0)
    follow = typed("followers", follower_id=2, followee_id=1, created_at=T0 + ms(10))
    src.emit("shards", "c", after=shard)
    src.emit("followers", "c", after=follow)
    src.emit("followers", "u", follow, {**follow, "created_at": T0 + ms(100)})
    events = in_lsn_order(src)
    assert feeds_of(apply_all(Store(), plans(events[:2]), **W))[2] == {10}
    for order in (events, events[::-1]):
        store = apply_all(Store(), plans(order), **W)
        assert feeds_of(store)[2] == expected_feeds(src, WINDOW_MS)[2] == set()
        assert index_of(store) == {}


def feed_log(store: Store, kind: str, user: int | None = None) -> list:
    return [
        (table, key)
        for k, table, key, _ts in store.log
        if k == kind and table.startswith("feed_by_user") and user in (None, key[0])
    ]


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
    assert fixed.rows("feed_by_user_author") == {}


@settings(max_examples=500, deadline=None)
@given(deliveries(max_actions=15), hs.randoms(use_true_random=False))
def test_concurrent_writers_converge_with_revalidation(case, rnd):
    """Every plan runs at once, their reads and writes interleaved at random."""
    src, delivered = case
    once = apply_all(Store(), plans(in_lsn_order(src)), **W)
    mixed = apply_concurrently(
        Store(), plans(delivered), rnd.randrange, shuffle=lambda ms: rnd.sample(ms, len(ms)), **W
    )
    assert mixed.visible() == once.visible()


@settings(max_examples=300, deadline=None)
@given(deliveries(max_actions=15), hs.randoms(use_true_random=False))
def test_concurrent_writers_converge_when_expansions_go_one_follower_or_row_per_step(case, rnd):
    """Big expansions go in steps between other events (issue 16): with a step of one
    follower or feed row, every page read, write and recheck interleaves with the rest."""
    src, delivered = case
    once = apply_all(Store(), plans(in_lsn_order(src)), **W)
    mixed = apply_concurrently(
        Store(),
        plans(delivered),
        rnd.randrange,
        shuffle=lambda ms: rnd.sample(ms, len(ms)),
        chunk=1,
        **W,
    )
    assert mixed.visible() == once.visible()


def naive_unbackfill(x: Unbackfill, window_ms: int) -> fanout.Program:
    """Unbackfill by the followee's live shards (what the feed should hold), not the index."""
    del window_ms
    [rows] = yield [fanout.Read(st.SELECT_AUTHOR_SHARDS_SINCE, (x.followee_id, fanout.EPOCH))]
    deletes = [
        m
        for r in rows
        for m in fanout.feed_delete(x.follower_id, x.followee_id, r.created_at, r.shard_id, x.lsn)
    ]
    return fanout.Writes(deletes, set())


def test_naive_unbackfill_misses_a_shard_deleted_concurrently():
    """An unfollow and a shard delete racing: each removes the fact the other reads.

    The unfollow's Unbackfill reads the followee's shards after the delete removed S; the
    delete's PurgeShard reads followers after the unfollow removed F. Reading the follower's
    feed index (what is actually there) finds the row.
    """
    src = Source()
    shard = typed("shards", id=10, author_id=1, created_at=T0)
    follow = typed("followers", follower_id=2, followee_id=1, created_at=T0)
    src.emit("followers", "c", after=follow)
    src.emit("shards", "c", after=shard)
    src.emit("followers", "d", before=follow)
    src.emit("shards", "d", before=shard)
    f, c, unf, d = (e for e in src.events if e.op != "t")

    def run(**kw) -> Store:
        # Both plans' own writes first, then the unfollow's read, then the delete's read.
        store = apply_all(Store(), plans([f, c]), **kw)
        schedule = iter([0, 0, 1, 1, 1, 1, 0, 1])
        pick = lambda n: next(schedule, 0) % n  # noqa: E731
        return apply_concurrently(store, plans([unf, d]), pick, **kw)

    naive = run(programs={Unbackfill: naive_unbackfill})
    assert (2, T0, 10) in naive.rows("feed_by_user")  # leaked
    assert run().rows("feed_by_user") == {}


# -- hybrid fan-out: push and pull authors (issue 16) ----------------------------------

# Pull from 2 followers, push again at 0: with 4 users, authors cross both ways often.
PULL = fanout.PullPolicy(threshold=1, hysteresis=0.9)
P = {**W, "pull": PULL}


def merged_feeds(store: Store, window_ms: int = WINDOW_MS) -> dict[int, set[int]]:
    """Return each user's feed as a read shows it: the feed partition merged with the
    shards, in the follow's window, of every pull-list author the user still follows
    (``feedline.readmodel.merge``, as ``ReadModel`` does)."""
    edges = {
        (pk[0], pk[1]): r.get("created_at") for pk, r in store.rows("following_by_user").items()
    }
    by_author: dict[int, list] = {}
    for author, created, sid in store.rows("shards_by_author"):
        by_author.setdefault(author, []).append((fanout.epoch_ms(created), sid, author))
    out = {}
    for user in (1, 2, 3, 4):
        sources = [
            sorted(
                (
                    (fanout.epoch_ms(c), sid, None)
                    for u, c, sid in store.rows("feed_by_user")
                    if u == user
                ),
                reverse=True,
            )
        ]
        for u, author in store.rows("pull_following_by_user"):
            if u == user and (user, author) in edges:
                followed = edges[(user, author)]
                since = window_start_ms(
                    None if followed is None else fanout.epoch_ms(followed), window_ms
                )
                sources.append(within(sorted(by_author.get(author, []), reverse=True), since))
        rows, _ = merge(sources, 10**6)
        out[user] = {r[1] for r in rows}
    return out


def modes(store: Store) -> dict[int, str]:
    return {pk[0]: r["target"] for pk, r in store.rows("author_mode").items()}


@settings(max_examples=300, deadline=None)
@given(histories(max_actions=30))
def test_with_pull_in_order_the_merged_feed_is_the_expected_feed(src):
    store = apply_all(Store(), plans(in_lsn_order(src)), **P)
    assert merged_feeds(store) == expected_feeds(src, WINDOW_MS)
    # A settled pull author's followers list them: the merge has what fan-out skipped.
    for follower, author in src.follows:
        if modes(store).get(author) == "pull":
            assert (follower, author) in store.rows("pull_following_by_user")


@settings(max_examples=400, deadline=None)
@given(deliveries(max_actions=30))
def test_with_pull_any_order_and_duplicates_give_the_expected_merged_feed(case):
    src, delivered = case
    store = apply_all(Store(), plans(delivered), **P)
    assert merged_feeds(store) == expected_feeds(src, WINDOW_MS)


@settings(max_examples=400, deadline=None)
@given(deliveries(max_actions=20), hs.randoms(use_true_random=False))
def test_with_pull_concurrent_writers_in_steps_give_the_expected_merged_feed(case, rnd):
    """Mode sweeps, fan-outs, follows, unfollows, deletes and replays all interleaved one
    read or write at a time, every expansion a follower or a feed row per step."""
    src, delivered = case
    store = apply_concurrently(
        Store(),
        plans(delivered),
        rnd.randrange,
        shuffle=lambda ms: rnd.sample(ms, len(ms)),
        chunk=1,
        **P,
    )
    assert merged_feeds(store) == expected_feeds(src, WINDOW_MS)


@dataclass(frozen=True)
class NeverAsks(fanout.PullPolicy):
    """The policy, but no fan-out finds its author worth asking the mode of."""

    def worth_asking(self, first_page: int, chunk: int) -> bool:
        return False


@settings(max_examples=300, deadline=None)
@given(deliveries(max_actions=20), hs.randoms(use_true_random=False))
def test_a_fan_out_that_does_not_ask_the_mode_copies_and_converges(case, rnd):
    """Issue 17: a fan-out reads the author's mode only when the first page of followers
    could be worth skipping (``PullPolicy.worth_asking``). One that does not ask must copy,
    whatever the decision: with no fan-out asking, amid the same mode sweeps, every feed
    partition alone holds its expected feed (a fan-out that skipped without asking would
    leave a pull author's post out of the feed of a follower with no pull entry yet) and
    the merged read is the expected feed too."""
    src, delivered = case
    store = apply_concurrently(
        Store(),
        plans(delivered),
        rnd.randrange,
        shuffle=lambda ms: rnd.sample(ms, len(ms)),
        window_ms=WINDOW_MS,
        pull=NeverAsks(PULL.threshold, PULL.hysteresis),
    )
    assert feeds_of(store) == expected_feeds(src, WINDOW_MS)
    assert merged_feeds(store) == expected_feeds(src, WINDOW_MS)


def _crossing_history() -> Source:
    """Author 1 gains two followers (pull), posts, gains a third, loses all (push), posts."""
    src = Source()
    create_users(src)
    toggle_follow(src, 2, 1)
    post(src, 1)
    toggle_follow(src, 3, 1)  # 2 followers: pull
    post(src, 1)
    toggle_follow(src, 4, 1)
    post(src, 1)
    toggle_follow(src, 2, 1)
    toggle_follow(src, 3, 1)
    toggle_follow(src, 4, 1)  # 0 followers: push
    toggle_follow(src, 4, 1)
    post(src, 1)
    return src


def test_an_author_crossing_both_ways_writes_o1_rows_while_pull_and_converges():
    src = _crossing_history()
    events = in_lsn_order(src)
    store = Store()
    seen_pull = False
    for e in events:
        apply_all(store, plans([e]), window_ms=10**9, pull=PULL)
        if modes(store).get(1) == "pull" and e.table == "shards" and e.op == "c":
            seen_pull = True
            # The pull author's shard is in their own feed only (O(1) rows for the post).
            holders = {u for u, _, sid in store.rows("feed_by_user") if sid == e.after["id"]}
            assert holders == {1}
        assert merged_feeds(store, 10**9) == expected_feeds_now(store, src, e.lsn)
    assert seen_pull
    assert modes(store)[1] == "push"
    assert store.rows("pull_following_by_user") == {}  # the push sweep dropped the entries
    assert merged_feeds(store, 10**9) == expected_feeds(src, 10**9)
    assert feeds_of(store) == expected_feeds(src, 10**9)  # push again: every row is written


def expected_feeds_now(store: Store, src: Source, lsn: int) -> dict[int, set[int]]:
    """Return the expected feeds of the history's prefix up to ``lsn`` (no window)."""
    prefix = Source()
    create_users(prefix)
    for e in in_lsn_order(src):
        if e.lsn > lsn or e.table not in ("followers", "shards"):
            continue
        if e.table == "followers":
            key = (e.row["follower_id"], e.row["followee_id"])
            if e.op == "d":
                prefix.follows.pop(key, None)
            else:
                prefix.follows[key] = e.after
        elif e.op == "d":
            prefix.shards.pop(e.before["id"], None)
        else:
            prefix.shards[e.after["id"]] = e.after
    return expected_feeds(prefix, 10**9)


def test_pull_off_plans_the_same_writes_as_before():
    """FEEDLINE_PULL_THRESHOLD=0 (pull None): no mode or pull-list read or write at all."""
    src = _crossing_history()
    store = apply_all(Store(), plans(in_lsn_order(src)), **W)
    assert store.rows("author_mode") == {} and store.rows("pull_following_by_user") == {}
    assert not [k for k in store.log if k[1] in ("author_mode", "pull_following_by_user")]


def test_a_post_while_the_push_to_pull_sweep_runs_is_in_every_merged_feed_at_once():
    """No gap during a crossing: fan-out keeps copying until the decision is settled, so a
    shard posted after the decision is written, before the sweep listed the followers,
    is in their feeds (skipping on an unsettled decision would lose it until the sweep)."""
    src = Source()
    create_users(src)
    toggle_follow(src, 2, 1)
    toggle_follow(src, 3, 1)  # author 1's second follower: pull
    events = in_lsn_order(src)
    crossing = next(
        i
        for i, e in enumerate(events)
        if e.table == "users" and e.row["id"] == 1 and e.row["follower_count"] == 2
    )
    store = apply_all(Store(), plans(events[:crossing]), window_ms=10**9, pull=PULL)
    sweep = steps(store, plans([events[crossing]])[0], window_ms=10**9, pull=PULL, chunk=1)
    while modes(store).get(1) != "pull":
        next(sweep)
    assert store.rows("pull_following_by_user") == {}  # decided, nobody listed yet
    post(src, 1)
    apply_all(store, plans(in_lsn_order(src)[crossing + 1 :]), window_ms=10**9, pull=PULL)
    assert merged_feeds(store, 10**9) == expected_feeds(src, 10**9)
    for _ in sweep:
        pass
    assert set(store.rows("pull_following_by_user")) == {(2, 1), (3, 1)}
    assert merged_feeds(store, 10**9) == expected_feeds(src, 10**9)


def test_only_the_deciding_event_resumes_an_unsettled_sweep():
    """A crossing costs one sweep: follows arriving while it runs (each a users event with
    a count past the threshold) leave it alone; the deciding event, re-delivered after a
    crash, runs it again; an older event changes nothing."""
    store = Store()
    store.apply(fanout.mutation(st.DECIDE_AUTHOR_MODE, (1, "pull", 500), 500))
    store.insert("followers_by_user", {"user_id": 1, "follower_id": 2, "edge_lsn": 400}, 400)

    def reads_of(lsn: int) -> list[str]:
        prog = fanout.mode_check(ModeCheck(1, 5, lsn), 10**9, 10, PULL)
        names = []
        try:
            reads = next(prog)
            while True:
                names += [r.statement for r in reads]
                reads = prog.send([store.select(r) for r in reads])
        except StopIteration as done:
            writes = done.value
        return names + [m.statement for m in writes.mutations]

    assert reads_of(600) == [st.SELECT_AUTHOR_MODE]  # a later follow: nothing
    assert reads_of(300) == [st.SELECT_AUTHOR_MODE]  # an older event: nothing
    assert reads_of(500) == [  # the deciding event again: its sweep's first page
        st.SELECT_AUTHOR_MODE,
        st.SELECT_FOLLOWERS_PAGE,
        st.INSERT_PULL_FOLLOWING,
    ]
