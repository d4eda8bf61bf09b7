"""Feed notices (feedline.notices): the wire format, and which events plan which notice."""

from __future__ import annotations

import pytest

from feedline import notices
from feedline.errors import BadNotice
from feedline.notices import AuthorNotice, EdgeNotice


def test_a_message_round_trips_and_repeats_go_once():
    told = [AuthorNotice(5), EdgeNotice(1, 5), AuthorNotice(5)]
    assert notices.decode(notices.encode(told)) == [AuthorNotice(5), EdgeNotice(1, 5)]


def test_a_backlog_goes_out_in_bounded_messages():
    told = [AuthorNotice(i) for i in range(2_500)] + [notices.Resync()]
    sent = notices.messages(told)
    assert [len(m.splitlines()) for m in sent] == [1_000, 1_000, 501]
    assert [n for m in sent for n in notices.decode(m)] == told


@pytest.mark.parametrize(
    "message", [b"author", b"author x", b"edge 1", b"like 1 2", b"author 1 2", b"\xff\xfe"]
)
def test_anything_else_is_bad(message):
    with pytest.raises(BadNotice):
        notices.decode(message)


def test_a_shard_notice_carries_the_feed_positions_time_in_ms():
    from datetime import UTC, datetime

    from feedline.notices import ShardNotice
    from feedline.readmodel.formats import to_ms

    at = datetime(2026, 11, 30, 12, 0, 0, 123_999, tzinfo=UTC)  # ms truncated, as Cassandra
    told = ShardNotice.of(7, 9, at)
    assert told.created_ms == to_ms(at.replace(tzinfo=None))
    assert notices.decode(notices.encode([told])) == [told]
