"""The read-time merge of hybrid fan-out pages exactly like one list holding every row."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as hs

from feedline.readmodel.merge import merge, window_start_ms, within

# Rows (created_at ms, shard id, author id); a shard id is unique, its time and author fixed.
shards = hs.dictionaries(hs.integers(1, 60), hs.tuples(hs.integers(0, 30), hs.integers(1, 4)))


def newest_first(rows):
    return sorted(rows, key=lambda r: (r[0], r[1]), reverse=True)


def after(rows, position):
    return [r for r in rows if position is None or (r[0], r[1]) < position]


@settings(max_examples=300, deadline=None)
@given(shards, hs.data(), hs.integers(1, 7))
def test_paging_the_merge_reads_each_row_once_in_order_then_ends(all_shards, data, limit):
    """Any split of the rows into a feed partition and pull authors' lists (a shard may be
    in both: a row written while its author was push), paged ``limit`` at a time from
    the position of each page's last row, reads the union once, newest first, and its
    last page (and only it) says there is no more."""
    rows = [(t, s, a) for s, (t, a) in all_shards.items()]
    in_feed = data.draw(hs.sets(hs.sampled_from(sorted(all_shards)))) if rows else set()
    feed = newest_first(r for r in rows if r[1] in in_feed)
    authors = {a: newest_first(r for r in rows if r[2] == a) for a in (1, 2, 3, 4)}
    pulled = data.draw(hs.sets(hs.sampled_from([1, 2, 3, 4])))
    # Every row not in the feed comes from a pull author (what convergence guarantees).
    expected = newest_first(r for r in rows if r[1] in in_feed or r[2] in pulled)
    read, position = [], None
    for _ in range(len(rows) + 2):
        sources = [after(feed, position)[: limit + 1]]
        sources += [after(authors[a], position)[: limit + 1] for a in sorted(pulled)]
        page, more = merge(sources, limit)
        read += page
        assert len(page) == limit or not more
        if not more:
            break
        position = (page[-1][0], page[-1][1])
    assert read == expected


def test_a_shard_in_the_feed_and_in_its_authors_list_is_shown_once():
    feed = [(30, 3, 1), (20, 2, 2), (10, 1, 1)]
    author = [(30, 3, 1), (25, 5, 1), (10, 1, 1)]
    assert merge([feed, author], 10) == ([(30, 3, 1), (25, 5, 1), (20, 2, 2), (10, 1, 1)], False)
    assert merge([feed, author], 2) == ([(30, 3, 1), (25, 5, 1)], True)


def test_equal_times_order_by_shard_id_like_the_feed_partition():
    """The feed's clustering is (created_at DESC, shard_id DESC): so is the merge's."""
    assert merge([[(5, 9, 1), (5, 2, 1)], [(5, 7, 2)]], 3) == (
        [(5, 9, 1), (5, 7, 2), (5, 2, 1)],
        False,
    )


def test_a_pull_authors_shards_before_the_follows_window_are_not_in_the_feed():
    """A push follow copies shards created at or after followed_at - window: so does pull."""
    rows = [(100, 4, 1), (60, 3, 1), (59, 2, 1)]
    assert within(rows, window_start_ms(80, 20)) == [(100, 4, 1), (60, 3, 1)]
    assert within(rows, window_start_ms(None, 20)) == rows  # an edge of unknown time: all
