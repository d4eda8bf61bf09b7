"""The fan-out programs one round at a time: what each reads, and what it writes for those rows.

test_convergence.py runs the same programs on a model of Cassandra under any delivery
order; here each expansion is stepped by hand, so the reads (statement and binds) and
the writes (statement, params, timestamp) are pinned exactly.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from types import SimpleNamespace as Row

import pytest

from feedline import fanout
from feedline import statements as st
from feedline.pipeline.metrics import PipelineMetrics
from feedline.strategies.base import TERMINAL, Backfill, FanOutShard, PurgeShard, Unbackfill
from tests.unit.strategies.events import T0

DAY = timedelta(days=1)
WINDOW_MS = 7 * 24 * 3600 * 1000
NAIVE_T0 = T0.astimezone(UTC).replace(tzinfo=None)  # what the driver returns for T0


def step(prog, *answers):
    """Run ``prog``, answering its rounds with ``answers``; return (rounds, result)."""
    try:
        rounds = [next(prog)]
    except StopIteration as done:  # a step that reads nothing
        return [], done.value
    try:
        for rows in answers:
            rounds.append(prog.send(rows))
    except StopIteration as done:
        return rounds, done.value
    raise AssertionError(f"program still reading after {len(answers)} rounds: {rounds[-1]}")


def writes(mutations):
    return [(m.statement, m.params, m.timestamp) for m in mutations]


def follower(fid: int, created_at, lsn: int) -> Row:
    return Row(follower_id=fid, created_at=created_at, edge_lsn=lsn)


def test_window_is_the_follows_created_at_minus_the_backfill_window_in_ms():
    assert fanout.window_start(T0, 1000) == T0 - timedelta(seconds=1)
    assert fanout.window_start(NAIVE_T0, 0) == T0  # a driver timestamp is UTC
    assert fanout.in_window(T0 - timedelta(seconds=1), T0, 1000)
    assert not fanout.in_window(T0 - timedelta(milliseconds=1001), NAIVE_T0, 1000)
    assert fanout.in_window(T0 - 1000 * DAY, None, 1000)  # no known follow time: no window


def test_fan_out_writes_feed_and_index_rows_at_each_in_window_edge_lsn():
    e = FanOutShard(author_id=1, shard_id=10, created_at=T0, lsn=900)
    rounds, out = step(
        fanout.fan_out(e, WINDOW_MS),
        [
            [
                follower(2, NAIVE_T0 - DAY, 50),  # followed before: in
                follower(3, NAIVE_T0 + 6 * DAY, 60),  # followed after, within the window: in
                follower(4, NAIVE_T0 + 8 * DAY, 70),  # followed long after (a replay): out
                follower(5, None, None),  # seeded without a time or LSN: in, at the shard's
            ]
        ],
    )
    assert rounds == [[fanout.Read(st.SELECT_FOLLOWERS_PAGE, (1, fanout.BEFORE_ALL, fanout.CHUNK))]]
    assert out.more is None  # a short page is the last
    assert writes(out.mutations) == [
        (st.INSERT_FEED_ITEM, (f, T0, 10, 1), ts) if kind == "feed"
        else (st.INSERT_FEED_INDEX, (f, 1, T0, 10), ts)
        for f, ts in ((2, 50), (3, 60), (5, 900))
        for kind in ("feed", "index")
    ]  # fmt: skip
    assert out.keys == {"fl:feed:2", "fl:feed:3", "fl:feed:5"}


def test_fan_out_recheck_undoes_rows_whose_edge_went_or_whose_window_moved():
    e = FanOutShard(author_id=1, shard_id=10, created_at=T0, lsn=900)
    _, out = step(fanout.fan_out(e, WINDOW_MS), [[follower(2, T0, 50), follower(3, T0, 60)]])
    now = [follower(3, NAIVE_T0 + 8 * DAY, 80)]  # 2 unfollowed; 3 re-followed much later
    rounds, undo = step(out.recheck(), [[Row(shard_id=10)], now])
    assert rounds == [
        [
            fanout.Read(st.SELECT_AUTHOR_SHARD, (1, T0, 10)),
            fanout.Read(st.SELECT_FOLLOWERS_BETWEEN, (1, 2, 3)),
        ]
    ]
    assert writes(undo) == [
        (st.DELETE_FEED_ITEM, (2, T0, 10), 50),
        (st.DELETE_FEED_INDEX, (2, 1, T0, 10), 50),
        (st.DELETE_FEED_ITEM, (3, T0, 10), 60),
        (st.DELETE_FEED_INDEX, (3, 1, T0, 10), 60),
    ]
    _, gone = step(out.recheck(), [[], now])  # the shard was deleted meanwhile
    assert {m.timestamp for m in gone} == {TERMINAL} and len(gone) == 4


def test_backfill_copies_the_window_and_trims_what_the_pair_holds_below_it():
    e = Backfill(follower_id=2, followee_id=1, lsn=500, created_at=T0)
    since = T0 - timedelta(milliseconds=WINDOW_MS)
    old = NAIVE_T0 - 30 * DAY
    rounds, out = step(
        fanout.backfill(e, WINDOW_MS),
        [
            [Row(created_at=NAIVE_T0, shard_id=11)],
            [Row(created_at=NAIVE_T0, shard_id=11), Row(created_at=old, shard_id=3)],
        ],
    )
    assert rounds == [
        [
            fanout.Read(st.SELECT_AUTHOR_SHARDS_SINCE, (1, since)),
            fanout.Read(st.SELECT_FEED_INDEX, (2, 1)),
        ]
    ]
    assert writes(out.mutations) == [
        (st.INSERT_FEED_ITEM, (2, NAIVE_T0, 11, 1), 500),
        (st.INSERT_FEED_INDEX, (2, 1, NAIVE_T0, 11), 500),
        (st.DELETE_FEED_ITEM, (2, old, 3), 500),
        (st.DELETE_FEED_INDEX, (2, 1, old, 3), 500),
    ]
    assert out.keys == {"fl:feed:2"}
    edge = [Row(created_at=NAIVE_T0, edge_lsn=500)]
    assert step(out.recheck(), [edge, [Row(created_at=NAIVE_T0, shard_id=11)]])[1] == []
    assert {m.timestamp for m in step(out.recheck(), [edge, []])[1]} == {TERMINAL}
    assert {m.timestamp for m in step(out.recheck(), [[], [Row(shard_id=11)]])[1]} == {500}


def test_unbackfill_deletes_what_the_index_holds_and_nothing_when_it_holds_nothing():
    e = Unbackfill(follower_id=2, followee_id=1, lsn=700)
    rows = [Row(created_at=NAIVE_T0, shard_id=11), Row(created_at=NAIVE_T0 - DAY, shard_id=9)]
    rounds, out = step(fanout.unbackfill(e), [rows])
    assert rounds == [[fanout.Read(st.SELECT_FEED_INDEX, (2, 1))]]
    assert writes(out.mutations) == [
        (st.DELETE_FEED_ITEM, (2, NAIVE_T0, 11), 700),
        (st.DELETE_FEED_ITEM, (2, NAIVE_T0 - DAY, 9), 700),
    ]
    assert out.keys == {"fl:feed:2"} and out.recheck is None
    # one range tombstone for the slice, in a step of its own after every feed row
    last = step(out.more())[1]
    assert writes(last.mutations) == [(st.DELETE_FEED_INDEX_AUTHOR, (2, 1), 700)]
    assert last.more is None
    assert step(fanout.unbackfill(e), [[]])[1].mutations == []


def test_purge_reads_in_window_followers_and_deletes_only_rows_that_exist():
    e = PurgeShard(author_id=1, shard_id=10, created_at=T0)
    followers = [
        follower(2, NAIVE_T0 - DAY, 50),  # holds it
        follower(3, NAIVE_T0, 60),  # does not (its fan-out has not run, or a replay)
        follower(4, NAIVE_T0 + 30 * DAY, 70),  # followed long after: not even read
    ]
    rounds, out = step(fanout.purge(e, WINDOW_MS), [followers], [[Row(shard_id=10)], []])
    assert rounds == [
        [fanout.Read(st.SELECT_FOLLOWERS_PAGE, (1, fanout.BEFORE_ALL, fanout.CHUNK))],
        [
            fanout.Read(st.SELECT_FEED_INDEX_ITEM, (2, 1, T0, 10)),
            fanout.Read(st.SELECT_FEED_INDEX_ITEM, (3, 1, T0, 10)),
        ],
    ]
    assert writes(out.mutations) == [
        (st.DELETE_FEED_ITEM, (2, T0, 10), TERMINAL),
        (st.DELETE_FEED_INDEX, (2, 1, T0, 10), TERMINAL),
    ]
    assert out.keys == {"fl:feed:2"}


def test_purge_of_a_shard_no_follower_window_holds_reads_once_and_writes_nothing():
    e = PurgeShard(author_id=1, shard_id=10, created_at=T0)
    rounds, out = step(fanout.purge(e, WINDOW_MS), [[follower(4, NAIVE_T0 + 30 * DAY, 70)]])
    assert len(rounds) == 1 and out.mutations == [] and out.keys == set()


READS = "feedline_cassandra_reads_total"


class FakeSession:
    """Answer single reads (``execute``) from a dict of statement name -> rows."""

    def __init__(self, rows):
        self.rows, self.calls = rows, []

    def prepare(self, cql):
        return SimpleStatement(cql)

    def execute(self, bound):
        self.calls.append(bound.name)
        return iter(self.rows[bound.name])


class SimpleStatement:
    def __init__(self, cql):
        self.name = next(n for n, s in st.STATEMENTS.items() if s.cql == cql)

    def bind(self, values):
        return self


@pytest.mark.parametrize("lsn", [None, 55])
def test_expander_runs_programs_and_its_recheck_afresh_each_call(lsn):
    """The writer retries a recheck after a transient error: each call starts over."""
    session = FakeSession(
        {
            st.SELECT_FOLLOWERS_PAGE: [follower(2, NAIVE_T0, lsn)],
            st.SELECT_FEED_INDEX: [Row(created_at=NAIVE_T0, shard_id=10)],
        }
    )
    settings = Row(
        backfill_window_s=7 * 24 * 3600, read_concurrency=4, expansion_chunk=500, pull_threshold=0
    )
    trims = fanout.FeedTrims(cap=800, slack=0.1)  # no feed here comes near the cap
    metrics = PipelineMetrics()
    prepared = fanout.PreparedStatements(session)
    expander = fanout.Expander(session, prepared, settings, trims, reads=metrics.reads_by_statement)
    out = expander.expand(FanOutShard(author_id=1, shard_id=10, created_at=T0, lsn=900))
    assert {m.timestamp for m in out.mutations} == {lsn or 900}
    unfollow = expander.expand(Unbackfill(follower_id=2, followee_id=1, lsn=950))
    assert len(unfollow.mutations) == 1 and unfollow.recheck() == []
    assert unfollow.more is not None and len(unfollow.more().mutations) == 1  # the index
    # Every read sent counts once, by statement (feedline_cassandra_reads_total).
    sent = metrics.registry.get_sample_value
    assert {name: sent(READS, {"statement": name}) for name in set(session.calls)} == {
        st.SELECT_FEED_INDEX: 1,
        st.SELECT_FOLLOWERS_PAGE: 1,
    }


def test_fan_out_goes_a_page_of_followers_per_step_and_rechecks_each_page_alone():
    """A big fan-out is bounded steps (issue 16): each reads one page after the last one
    seen, writes it, re-validates only its id range, and offers the next page."""
    e = FanOutShard(author_id=1, shard_id=10, created_at=T0, lsn=900)
    rounds, first = step(
        fanout.fan_out(e, WINDOW_MS, 2), [[follower(2, T0, 50), follower(5, T0, 60)]]
    )
    assert rounds == [[fanout.Read(st.SELECT_FOLLOWERS_PAGE, (1, fanout.BEFORE_ALL, 2))]]
    assert len(first.mutations) == 4 and first.more is not None
    check, _ = step(first.recheck(), [[Row(shard_id=10)], []])
    assert check[0][1] == fanout.Read(st.SELECT_FOLLOWERS_BETWEEN, (1, 2, 5))
    rounds, second = step(first.more(), [[follower(7, T0, 70)]])
    assert rounds == [[fanout.Read(st.SELECT_FOLLOWERS_PAGE, (1, 5, 2))]]
    assert {m.params[0] for m in second.mutations} == {7} and second.more is None


def test_purge_goes_a_page_of_followers_per_step():
    e = PurgeShard(author_id=1, shard_id=10, created_at=T0)
    page = [follower(2, NAIVE_T0 - DAY, 50), follower(3, NAIVE_T0 - DAY, 60)]
    _, first = step(fanout.purge(e, WINDOW_MS, 2), [page], [[Row(shard_id=10)], []])
    assert first.more is not None
    rounds, last = step(first.more(), [[]])
    assert rounds == [[fanout.Read(st.SELECT_FOLLOWERS_PAGE, (1, 3, 2))]]
    assert last.mutations == [] and last.more is None


def test_backfill_writes_a_chunk_of_rows_per_step_and_rechecks_after_the_last():
    e = Backfill(follower_id=2, followee_id=1, lsn=500, created_at=T0)
    shards = [Row(created_at=NAIVE_T0, shard_id=s) for s in (11, 12, 13)]
    _, out = step(fanout.backfill(e, WINDOW_MS, 2), [shards, []])
    sizes, rechecks = [], []
    while True:
        sizes.append(len(out.mutations))
        rechecks.append(out.recheck is not None)
        if out.more is None:
            break
        out = step(out.more())[1]
    assert sizes == [4, 2] and rechecks == [False, True]


def test_a_backfill_that_writes_no_row_has_no_recheck():
    """The re-validation only deletes rows the backfill wrote: with none, it reads nothing
    (issue 17: a follow of an author with no shard in the window costs its reads only)."""
    e = Backfill(follower_id=2, followee_id=1, lsn=500, created_at=T0)
    old = [Row(created_at=NAIVE_T0 - 30 * DAY, shard_id=9)]  # below the window: deleted
    _, out = step(fanout.backfill(e, WINDOW_MS), [[], old])
    assert writes(out.mutations) == [
        (st.DELETE_FEED_ITEM, (2, NAIVE_T0 - 30 * DAY, 9), 500),
        (st.DELETE_FEED_INDEX, (2, 1, NAIVE_T0 - 30 * DAY, 9), 500),
    ]
    assert out.recheck is None and out.more is None
    _, out = step(fanout.backfill(e, WINDOW_MS), [[Row(created_at=NAIVE_T0, shard_id=10)], []])
    assert out.recheck is not None


def test_a_fan_out_reads_the_mode_only_when_its_first_page_could_be_worth_skipping():
    """Issue 17: a short first page below threshold x hysteresis is every follower the
    author has, too few to skip: one read, the rows written. A full page (or one at the
    line) also reads the mode, and a settled pull author is skipped."""
    e = FanOutShard(author_id=1, shard_id=10, created_at=T0, lsn=900)
    policy = fanout.PullPolicy(threshold=1500, hysteresis=0.8)
    page = [follower(f, T0, 50) for f in (2, 3)]
    rounds, out = step(fanout.fan_out(e, WINDOW_MS, 500, pull=policy), [page])
    assert rounds == [[fanout.Read(st.SELECT_FOLLOWERS_PAGE, (1, fanout.BEFORE_ALL, 500))]]
    assert {m.params[0] for m in out.mutations} == {2, 3}
    pull = Row(target="pull", target_lsn=7, settled_lsn=7)
    rounds, out = step(fanout.fan_out(e, WINDOW_MS, 2, pull=policy), [page], [[pull]])
    assert rounds[1] == [fanout.Read(st.SELECT_AUTHOR_MODE, (1,))]
    assert out.mutations == [] and out.more is None
    small = fanout.PullPolicy(threshold=2, hysteresis=1.0)
    rounds, out = step(fanout.fan_out(e, WINDOW_MS, 500, pull=small), [page], [[pull]])
    assert len(rounds) == 2 and out.mutations == []
    assert policy.worth_asking(1200, 1500) and not policy.worth_asking(1199, 1500)
