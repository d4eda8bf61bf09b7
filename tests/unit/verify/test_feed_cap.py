"""Verify and rebuild with bounded feeds: the expected feed is its newest FEEDLINE_FEED_MAX.

Pure functions only (``model.untrimmed``, ``rebuild.cut_below_cap``); the integration
test ``tests/integration/pipeline/test_bounded_feeds.py`` runs verify on the real stack.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from feedline import cache_keys
from feedline import statements as st
from feedline.readmodel.formats import FEED, Window
from feedline.rebuild import cut_below_cap, plan_user
from feedline.strategies.common import mutation
from feedline.verify import cache
from feedline.verify.model import diff_partition, untrimmed
from feedline.verify.source import Expected

T0 = datetime(2026, 11, 30, 12, 0, 0)
USER, AUTHOR = 2, 1


def row(n: int, author: int = AUTHOR) -> dict:
    """Return feed row ``n`` (higher is newer)."""
    return {"user_id": USER, "shard_id": 100 + n, "author_id": author,
            "created_at": T0 + timedelta(milliseconds=n)}  # fmt: skip


def newest_first(ns) -> list[dict]:
    return [row(n) for n in sorted(ns, reverse=True)]


KEPT = newest_first(range(7, 10))  # cap 3: rows 9, 8, 7
BEYOND = newest_first(range(5, 7))  # slack 2: rows 6, 5 may wait for the next trim


def diffs(feed: list[dict], index: list[dict]) -> list[str]:
    feed, index = untrimmed(KEPT, BEYOND, feed, index)
    found = diff_partition("feed_by_user", USER, KEPT, feed)
    found += diff_partition("feed_by_user_author", USER, KEPT, index)
    return [f"{d.kind} {d.table} {d.identity}" for d in found]


def test_a_feed_with_rows_waiting_for_their_trim_is_clean():
    rows = newest_first(range(5, 10))
    assert diffs(rows, rows) == []


def test_index_rows_below_the_cap_are_dead_and_not_compared():
    assert diffs(KEPT, newest_first(range(0, 10))) == []


def test_a_feed_over_the_cap_plus_slack_shows_its_tail_as_extra():
    rows = newest_first(range(4, 10))
    assert diffs(rows, KEPT) == [
        "extra feed_by_user 106",
        "extra feed_by_user 105",
        "extra feed_by_user 104",
    ]


def test_a_gap_or_a_resurrected_row_below_the_line_is_reported():
    """A row of the newest three missing is a gap; a row past the expected tail (an old
    trimmed row come back) is extra even while the feed is within cap plus slack."""
    assert diffs(newest_first([9, 7]), newest_first([9, 7])) == [
        "missing feed_by_user 108",
        "missing feed_by_user_author 108",
    ]
    assert diffs(newest_first([9, 8, 7, 1]), KEPT) == ["extra feed_by_user 101"]


def test_an_expected_feed_within_the_cap_is_compared_whole():
    feed, index = untrimmed(KEPT, [], newest_first(range(0, 10)), newest_first(range(0, 10)))
    assert len(diff_partition("feed_by_user", USER, KEPT, feed)) == 7
    assert len(diff_partition("feed_by_user_author", USER, KEPT, index)) == 7


def test_rebuild_cuts_past_the_cap_with_range_tombstones_not_one_per_row():
    expected = Expected(USER, {("feed_by_user", USER): KEPT}, BEYOND)
    actual = {("feed_by_user", USER): newest_first(range(0, 10))}
    _upserts, deletes = plan_user(expected.partitions, actual, 77)
    assert len(deletes) == 7
    like = mutation(st.DELETE_LIKE, (5, 6), 77)
    cut = cut_below_cap(expected, [*deletes, like], 77)
    line = (USER, T0 + timedelta(milliseconds=6), 106)
    assert cut == [
        like,
        mutation(st.DELETE_FEED_BELOW, line, 77),
        mutation(st.DELETE_FEED_INDEX_BELOW, (USER, AUTHOR, *line[1:]), 77),
    ]
    within = Expected(USER, {("feed_by_user", USER): KEPT})
    assert cut_below_cap(within, deletes, 77) == deletes


class OneEntry:
    """A Redis stand-in holding one cached entry (verify's cache check only calls mget)."""

    def __init__(self, entry: bytes):
        self.entry = entry

    def mget(self, keys: list[str]) -> list[bytes | None]:
        return [self.entry if k == cache_keys.feed(USER) else None for k in keys]


def cached_feed(ns, complete: bool) -> OneEntry:
    rows = cache.expected_list(FEED, newest_first(ns))
    return OneEntry(FEED.encode(Window(rows, complete)))


def test_a_cached_feed_window_may_hold_the_rows_past_the_cap_but_not_skip_any():
    expected = Expected(USER, {("feed_by_user", USER): KEPT}, BEYOND)
    stale = lambda entry: [d.table for d in cache.check_user(entry, expected)[1]]  # noqa: E731
    assert stale(cached_feed(range(7, 10), complete=True)) == []
    assert stale(cached_feed(range(5, 10), complete=True)) == []
    assert stale(cached_feed(range(8, 10), complete=False)) == []
    assert stale(cached_feed(range(8, 10), complete=True)) == ["redis fl:feed:2"]
    assert stale(cached_feed([9, 8, 7, 5], complete=True)) == ["redis fl:feed:2"]
    within = Expected(USER, {("feed_by_user", USER): KEPT})
    assert cache.check_user(cached_feed(range(5, 10), True), within)[1] != []
