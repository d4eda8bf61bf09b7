"""ReadModel's merged feed pages, through its real cursors, windows and merge.

The store and the cache are fakes (pure logic under test, no I/O): the store answers the
read model's named queries from in-memory lists, the cache is unavailable (as when Redis
is down: every window loads from the store, nothing is written back).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace as Row
from typing import Any

from feedline.readmodel.formats import FEED
from feedline.readmodel.model import ReadModel
from feedline.settings import ReadSettings

T0 = datetime(2026, 11, 30, 12, 0, 0)
WINDOW_MS = 60_000


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


class NoCache:
    """Redis unavailable: no leases, no near cache."""

    def lease(self, keys: list[str]) -> None:
        return None

    def copies(self) -> None:
        return None


class Store:
    """The read model's named queries over in-memory lists (newest first)."""

    def __init__(self, feed, lists, follows, pulled):
        self.feed, self.lists, self.follows, self.pulled = feed, lists, follows, pulled

    def rows(self, name: str, *params: Any) -> list[Any]:
        owner = params[0]
        if name == "pull_following":
            return [Row(author_id=a) for a in self.pulled]
        if name == "following_in":
            return [
                Row(followee_id=a, created_at=t) for a, t in self.follows.items() if a in params[1]
            ]
        source = self.feed if name.startswith("feed") else self.lists[owner]
        rows = sorted(source, key=lambda r: (r.created_at, r.shard_id), reverse=True)
        if name.endswith("_after"):
            bound = (params[1], params[2])
            rows = [r for r in rows if (r.created_at, r.shard_id) < bound]
        return rows[: params[-1]]

    def run(self, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
        return [self.rows(name, *params) for name, params in queries]


def shard(sid: int, author: int, seconds: int) -> Row:
    return Row(created_at=at(seconds), shard_id=sid, author_id=author)


def model(store: Store) -> ReadModel:
    return ReadModel(NoCache(), store, None, ReadSettings(window=5), pull_window_ms=WINDOW_MS)


def read_all(reads: ReadModel, owner: int, limit: int) -> list[int]:
    ids, cursor = [], None
    for _ in range(100):
        page = reads.page(FEED, owner, cursor, limit)
        ids += [r[1] for r in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("the feed did not end")


def test_merged_pages_read_each_shard_once_newest_first_within_the_follows_window():
    """Reader 1 follows 7 (push, rows in the feed) and pull authors 8 (followed at 100 s:
    its window starts at 40 s) and 9; 9 has a row in the feed too (written while push);
    author 6 is in the pull list but not followed (a stale entry: not merged)."""
    feed = [shard(1, 7, 10), shard(2, 7, 50), shard(3, 9, 60), shard(4, 1, 70)]
    lists = {
        8: [shard(10, 8, 30), shard(11, 8, 40), shard(12, 8, 65), shard(13, 8, 90)],
        9: [shard(3, 9, 60), shard(20, 9, 60), shard(21, 9, 80)],
        6: [shard(30, 6, 75)],
    }
    follows = {7: at(0), 8: at(100), 9: at(0)}
    store = Store(feed, lists, follows, pulled=[6, 8, 9])
    everything = feed + [r for a in (8, 9) for r in lists[a] if r.created_at >= at(40)]
    expected = [
        r.shard_id
        for r in sorted(
            {r.shard_id: r for r in everything}.values(),
            key=lambda r: (r.created_at, r.shard_id),
            reverse=True,
        )
    ]
    assert expected == [13, 21, 4, 12, 20, 3, 2, 11, 1]
    for limit in (1, 2, 3, 4, 9, 10):  # windows of 5: pages cross from Redis-style to queries
        assert read_all(model(store), 1, limit) == expected, limit


def test_a_reader_without_followed_pull_authors_reads_the_feed_alone():
    feed = [shard(1, 7, 10), shard(2, 7, 20)]
    store = Store(feed, {6: [shard(30, 6, 75)]}, follows={7: at(0)}, pulled=[6])
    page = model(store).page(FEED, 1, None, 5)
    assert [r[1] for r in page.rows] == [2, 1] and page.next_cursor is None and page.windowed
