"""When a stream may put a new shard on top without reading the feed (``on_top``)."""

from __future__ import annotations

from feedline.notices import ShardNotice
from feedline.stream.listener import on_top

VIEW = ((1_000, 5), (900, 4))


def test_a_followed_authors_newest_shard_goes_on_top():
    assert on_top(VIEW, ShardNotice(7, 6, 1_100), reader=1, following={7: 500})


def test_the_readers_own_shard_goes_on_top():
    assert on_top(VIEW, ShardNotice(1, 6, 1_100), reader=1, following={})
    assert on_top((), ShardNotice(1, 6, 1_100), reader=1, following={})


def test_anything_not_surely_newest_and_in_the_feed_takes_the_read():
    assert not on_top(VIEW, ShardNotice(7, 6, 999), reader=1, following={7: 500})  # older
    assert not on_top(VIEW, ShardNotice(7, 5, 1_000), reader=1, following={7: 500})  # held
    assert not on_top(VIEW, ShardNotice(8, 6, 1_100), reader=1, following={7: 500})  # unknown
    assert not on_top(VIEW, ShardNotice(7, 6, 1_100), reader=1, following={7: 1_200})  # window
    assert not on_top(VIEW, ShardNotice(7, 6, 1_100), reader=1, following={7: None})
