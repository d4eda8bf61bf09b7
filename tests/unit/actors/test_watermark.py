"""The watermark never passes an unfinished offset and never waits for a missing one."""

import random

from hypothesis import given
from hypothesis import strategies as st

from feedline.actors.watermark import Watermark


def test_nothing_committable_until_the_first_offset_is_done():
    w = Watermark()
    for o in (5, 6, 7):
        w.add(o)
    w.mark_done(6)
    w.mark_done(7)
    assert w.committable is None
    assert w.in_flight == 3
    w.mark_done(5)
    assert w.committable == 8
    assert w.in_flight == 0


def test_gaps_in_offsets_do_not_block_commits():
    """Compacted topics and transaction markers leave holes: only delivered offsets count."""
    w = Watermark()
    for o in (10, 13, 20):
        w.add(o)
    w.mark_done(10)
    assert w.committable == 11
    w.mark_done(20)
    assert w.committable == 11  # 13 is still pending: never commit past it
    w.mark_done(13)
    assert w.committable == 21


def test_replayed_offsets_are_refused_and_duplicate_acks_ignored():
    w = Watermark()
    assert w.add(1)
    assert not w.add(1)
    assert not w.add(0)
    w.mark_done(1)
    w.mark_done(1)
    w.mark_done(99)
    assert w.committable == 2
    assert w.pending() == []


@given(
    offsets=st.lists(st.integers(0, 10_000), min_size=1, max_size=200, unique=True),
    seed=st.integers(0, 2**32),
    finished=st.floats(0, 1),
)
def test_committable_is_one_past_the_longest_done_prefix(offsets, seed, finished):
    offsets.sort()
    w = Watermark()
    for o in offsets:
        w.add(o)
    done = [o for o in offsets if random.Random(seed + o).random() < finished]
    random.Random(seed).shuffle(done)
    for o in done:
        w.mark_done(o)
    prefix = 0
    while prefix < len(offsets) and offsets[prefix] in set(done):
        prefix += 1
    expected = offsets[prefix - 1] + 1 if prefix else None
    assert w.committable == expected
    assert w.in_flight == len(offsets) - prefix
    assert w.pending() == [o for o in offsets if o not in set(done)]
