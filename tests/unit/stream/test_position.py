"""Stream positions (feedline.stream.position): the id codec and the view diff, as pure logic.

The property that matters: whatever view a client holds (any id it was sent) and whatever
the feed's head is now, applying the diff's events the way a client does (drop on delete,
add on item and keep the newest ``limit``) ends with exactly the feed's head, never adds
what the view holds, and every event's id decodes to the view after it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedline.errors import BadCursor
from feedline.stream import position

POSITIONS = st.tuples(st.integers(0, 2**41), st.integers(1, 2**62))


def newest_first(positions) -> tuple:
    return tuple(sorted(set(positions), reverse=True))


@given(st.lists(POSITIONS, max_size=100), st.integers(1, 100))
def test_an_id_decodes_to_the_view_and_limit_it_encodes(positions, limit):
    view = newest_first(positions)[:limit]
    assert position.decode(position.encode(view, limit), 100) == (view, limit)


@pytest.mark.parametrize(
    "text",
    ["", "x", "AA", "not base64!", position.encode(((5, 1),), 20)[:-2], "AhQB" + "A" * 40],
)
def test_anything_else_is_a_bad_cursor(text):
    with pytest.raises(BadCursor):
        position.decode(text, 100)


def test_a_forged_view_out_of_order_or_before_the_epoch_is_refused():
    import base64

    def raw(*values: int) -> str:
        out = bytearray((1,))
        for v in values:
            position._varint(out, v)
        return base64.urlsafe_b64encode(bytes(out)).rstrip(b"=").decode()

    assert position.decode(raw(5, 2, 100, 7, 10, 6), 100) == (((100, 7), (90, 6)), 5)
    for forged in (raw(5, 2, 100, 7, 101, 6), raw(5, 2, 100, 7, 0, 7), raw(5, 2, 100, 7, 0, 8)):
        with pytest.raises(BadCursor):  # below zero, the same position twice, not newest first
            position.decode(forged, 100)


def test_a_limit_above_the_servers_is_refused():
    with pytest.raises(BadCursor):
        position.decode(position.encode((), 500), 100)


def apply(view: tuple, changes, limit: int) -> tuple:
    """What a client does with the events (its own logic, not the server's)."""
    held = list(view)
    for change in changes:
        if change.kind == "delete":
            held.remove(change.position)
        else:
            assert change.position not in held, "an item the client already holds"
            held.append(change.position)
            held = sorted(held, reverse=True)[:limit]
        assert tuple(held) == change.view, "an event's id is not the view after it"
    return tuple(held)


@given(st.lists(POSITIONS, max_size=60), st.lists(POSITIONS, max_size=60), st.integers(1, 30))
def test_applying_the_diff_ends_with_the_feeds_head(before, after, limit):
    """``before`` is the feed the client last saw, ``after`` the feed now (any change)."""
    view = newest_first(before)[:limit]
    whole = newest_first(after)
    head = whole[:limit]
    floor = head[-1] if len(whole) > limit else None
    changes, final = position.diff(view, head, floor, limit)
    assert apply(view, changes, limit) == final
    assert final == head
    for change in changes:  # a delete only for what left the feed, never for a drop-off
        if change.kind == "delete":
            assert change.position not in whole


def test_an_item_below_the_head_only_drops_off_the_view():
    view = ((30, 3), (20, 2), (10, 1))
    changes, final = position.diff(view, ((40, 4), (30, 3), (20, 2)), (20, 2), 3)
    assert [(c.kind, c.position) for c in changes] == [("item", (40, 4))]
    assert final == ((40, 4), (30, 3), (20, 2))


def test_a_deleted_item_inside_the_head_is_a_delete_and_the_next_one_comes_in():
    view = ((30, 3), (20, 2), (10, 1))
    changes, final = position.diff(view, ((30, 3), (10, 1), (5, 9)), (5, 9), 3)
    assert [(c.kind, c.position) for c in changes] == [("delete", (20, 2)), ("item", (5, 9))]
    assert final == ((30, 3), (10, 1), (5, 9))


def test_a_first_connection_gets_the_head_oldest_first():
    changes, final = position.diff((), ((30, 3), (20, 2)), None, 20)
    assert [c.position for c in changes] == [(20, 2), (30, 3)]
    assert final == ((30, 3), (20, 2))
