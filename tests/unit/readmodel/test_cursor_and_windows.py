"""Cursors round-trip and refuse forgeries; windows serve exactly the pages they can."""

from __future__ import annotations

import time

import pytest

from feedline.breaker import Breaker
from feedline.errors import BadCursor
from feedline.readmodel.cursor import CursorCodec
from feedline.readmodel.formats import COMMENTS, FEED, FOLLOWERS, Window
from feedline.readmodel.model import _bounds, _from_window

codec = CursorCodec("secret")


def test_cursor_round_trips_in_its_scope():
    cursor = codec.encode("feed:1", (1_700_000_000_123, 42))
    assert codec.decode("feed:1", cursor, 2) == (1_700_000_000_123, 42)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # tag changed
        lambda c: "A" + c[1:] if c[0] != "A" else "B" + c[1:],  # position changed
        lambda c: c + "AAAA",  # wrong length
        lambda c: "not base64 !!",
        lambda c: "",
        lambda c: "é",
    ],
)
def test_forged_or_malformed_cursor_is_a_bad_cursor(mangle):
    cursor = codec.encode("feed:1", (5, 6))
    with pytest.raises(BadCursor):
        codec.decode("feed:1", mangle(cursor), 2)


def test_cursor_of_another_list_or_secret_is_refused():
    cursor = codec.encode("feed:1", (5, 6))
    with pytest.raises(BadCursor):
        codec.decode("feed:2", cursor, 2)
    with pytest.raises(BadCursor):
        CursorCodec("other").decode("feed:1", cursor, 2)


def desc_rows(n):
    return [(1000 - i, 500 - i, 7) for i in range(n)]


def test_window_serves_first_page_and_pages_inside_it():
    w = Window(desc_rows(100), complete=False)
    rows, more = _from_window(w, FEED, None, 20)
    assert rows == w.rows[:20] and more
    rows, more = _from_window(w, FEED, w.rows[19][:2], 30)
    assert rows == w.rows[20:50] and more
    # The last full page of an incomplete window: more may follow, from Cassandra.
    rows, more = _from_window(w, FEED, w.rows[79][:2], 20)
    assert rows == w.rows[80:] and more
    assert _from_window(w, FEED, w.rows[89][:2], 20) is None
    assert _from_window(w, FEED, (1, 1), 20) is None  # past the window


def test_complete_window_ends_the_list():
    w = Window(desc_rows(30), complete=True)
    rows, more = _from_window(w, FEED, w.rows[9][:2], 50)
    assert rows == w.rows[10:] and not more
    assert _from_window(w, FEED, w.rows[-1][:2], 5) == ([], False)


def test_cursor_older_than_new_head_items_skips_them():
    w = Window([(2000, 1, 7), *desc_rows(10)], complete=True)  # a newer item arrived
    rows, _ = _from_window(w, FEED, (1000 - 4, 500 - 4), 3)
    assert rows == desc_rows(10)[5:8]


def test_ascending_lists_compare_the_other_way():
    w = Window([(i, 0) for i in range(1, 11)], complete=True)
    rows, more = _from_window(w, FOLLOWERS, (3,), 4)
    assert rows == [(4, 0), (5, 0), (6, 0), (7, 0)] and more


def test_window_codecs_round_trip():
    w = Window(desc_rows(3), complete=True)
    assert FEED.decode(FEED.encode(w)) == w
    c = Window([(1, 2, 3, "body ü")], complete=False)
    assert COMMENTS.decode(COMMENTS.encode(c)) == c


def test_breaker_skips_then_lets_one_probe_through():
    b = Breaker(0.05, 0.2)
    assert b.allow()
    b.failure(ConnectionError("down"))
    assert not b.allow()
    time.sleep(0.06)
    assert b.allow()  # the probe
    assert not b.allow()  # the others keep skipping while it runs
    b.success()
    assert b.allow() and not b.failing


def test_cursor_signed_with_the_previous_secret_is_accepted_during_rotation():
    old = CursorCodec("old-secret")
    rotated = CursorCodec("new-secret", previous="old-secret")
    cursor = old.encode("feed:1", (7, 8))
    assert rotated.decode("feed:1", cursor, 2) == (7, 8)
    with pytest.raises(BadCursor):  # once `previous` is dropped, it is refused
        CursorCodec("new-secret").decode("feed:1", cursor, 2)


@pytest.mark.parametrize("ms", [2**63 - 1, -(2**63), 253_402_300_800_000])
def test_signed_position_past_the_datetime_range_is_a_bad_cursor(ms):
    with pytest.raises(BadCursor):
        _bounds(FEED, (ms, 1))
