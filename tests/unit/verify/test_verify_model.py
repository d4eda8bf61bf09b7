"""verify's pure parts: partition diffs, the report, rebuild's plan, cache windows."""

from __future__ import annotations

from datetime import UTC, datetime

from feedline import cache_keys
from feedline import statements as st
from feedline.readmodel import formats as rm
from feedline.rebuild import plan_user
from feedline.verify import cache
from feedline.verify.model import Report, diff_partition, ms
from feedline.verify.source import Expected

T1 = datetime(2026, 11, 26, 14, 5, 28, 123456, tzinfo=UTC)
T1_MS = datetime(2026, 11, 26, 14, 5, 28, 123000)
T2 = datetime(2026, 11, 26, 14, 6, 0)


def feed_row(shard: int, created=T1_MS, author: int = 7, user: int = 1) -> dict:
    return {"user_id": user, "shard_id": shard, "created_at": created, "author_id": author}


def test_ms_truncates_like_the_decoder_and_drops_the_zone():
    assert ms(T1) == T1_MS
    assert ms(T1_MS) == T1_MS


def test_identical_partitions_have_no_difference():
    rows = [feed_row(1), feed_row(2)]
    assert diff_partition("feed_by_user", 1, rows, list(reversed(rows))) == []


def test_each_kind_of_difference_is_named():
    expected = [feed_row(1), feed_row(2), feed_row(3)]
    actual = [feed_row(2, author=8), feed_row(3), feed_row(3, created=T2), feed_row(4)]
    found = {(d.kind, d.identity) for d in diff_partition("feed_by_user", 1, expected, actual)}
    assert found == {("missing", 1), ("stale", 2), ("duplicate", 3), ("extra", 4)}


def test_a_duplicate_that_is_not_expected_at_all_is_still_a_duplicate():
    found = diff_partition("feed_by_user", 1, [], [feed_row(5), feed_row(5, created=T2)])
    assert [d.kind for d in found] == ["duplicate"]


def test_report_counts_everything_but_keeps_a_bounded_number():
    report = Report(keep=2)
    report.add(diff_partition("feed_by_user", 1, [feed_row(i) for i in range(5)], []))
    assert report.total == 5 and len(report.differences) == 2 and not report.clean
    assert report.counts()["missing"] == 5
    assert "5 differences (missing 5" in report.summary()
    assert Report().summary().startswith("verify: OK, 0 differences")


def test_a_difference_prints_on_one_line_with_its_keys():
    (d,) = diff_partition("feed_by_user", 12, [feed_row(345, user=12)], [])
    text = str(d)
    assert "\n" not in text
    assert text.startswith("missing   feed_by_user user_id=12 shard_id=345 expected=(")


def test_rebuild_writes_every_expected_row_and_deletes_the_rest_at_one_timestamp():
    expected = {("feed_by_user", 1): [feed_row(1), feed_row(2)]}
    actual = {("feed_by_user", 1): [feed_row(2), feed_row(2, created=T2), feed_row(9)]}
    upserts, deletes = plan_user(expected, actual, 1234)
    assert [m.statement for m in upserts] == [st.INSERT_FEED_ITEM] * 2
    assert {m.params[2] for m in upserts} == {1, 2}
    assert {(m.params[1], m.params[2]) for m in deletes} == {(T2, 2), (T1_MS, 9)}
    assert {m.timestamp for m in upserts + deletes} == {1234}
    assert all(m.statement == st.DELETE_FEED_ITEM for m in deletes)


def test_rebuild_fills_the_feed_index_and_deletes_its_extras_with_the_feed_rows():
    index = "feed_by_user_author"
    expected = {("feed_by_user", 1): [feed_row(1)], (index, 1): [feed_row(1)]}
    actual = {(index, 1): [feed_row(9)]}
    upserts, deletes = plan_user(expected, actual, 1234)
    assert [(m.statement, m.params) for m in upserts] == [
        (st.INSERT_FEED_ITEM, (1, T1_MS, 1, 7)),
        (st.INSERT_FEED_INDEX, (1, 7, T1_MS, 1)),
    ]
    assert [(m.statement, m.params) for m in deletes] == [(st.DELETE_FEED_INDEX, (1, 7, T1_MS, 9))]
    # One partition group: the feed row and its index row go out in one batch.
    assert {m.partition for m in upserts + deletes} == {("feed_by_user", 1)}


def test_verify_compares_the_feed_index_like_the_feed():
    index = [{"user_id": 1, "author_id": 7, "created_at": T1_MS, "shard_id": 1}]
    moved = [{**index[0], "author_id": 8}, {**index[0], "shard_id": 2}]
    found = {(d.kind, d.identity) for d in diff_partition("feed_by_user_author", 1, index, moved)}
    assert found == {("stale", 1), ("extra", 2)}


class FakeRedis:
    def __init__(self, entries: dict[str, bytes]):
        self.entries = entries

    def mget(self, keys: list[str]) -> list[bytes | None]:
        return [self.entries.get(k) for k in keys]


def test_cache_windows_must_be_the_head_of_the_expected_list():
    rows = [feed_row(1, T1_MS), feed_row(2, T2)]
    expected = Expected(1, {("feed_by_user", 1): rows})
    newest_first = [(rm.to_ms(T2), 2, 7), (rm.to_ms(T1_MS), 1, 7)]
    good = rm.FEED.encode(rm.Window(newest_first, complete=True))
    head = rm.FEED.encode(rm.Window(newest_first[:1], complete=False))
    stale = rm.FEED.encode(rm.Window(newest_first[:1], complete=True))
    for entry, differences in ((good, 0), (head, 0), (stale, 1)):
        checked, found = cache.check_user(FakeRedis({cache_keys.feed(1): entry}), expected)
        assert (checked, len(found)) == (1, differences)


def test_cached_objects_must_match_and_a_miss_is_fine():
    user = {"user_id": 3, "handle": "ada", "follower_count": 1, "following_count": 0,
            "shard_count": 2, "created_at": T1_MS}  # fmt: skip
    expected = Expected(3, {("users_by_id", 3): [user]})
    assert cache.check_user(FakeRedis({}), expected) == (0, [])

    class Row:
        user_id, handle, follower_count, following_count, shard_count = 3, "ada", 1, 0, 2
        created_at = T1_MS

    good = rm.VALUE + rm.user_json(Row)
    assert cache.check_user(FakeRedis({cache_keys.user(3): good}), expected) == (1, [])
    Row.shard_count = 1
    stale = rm.VALUE + rm.user_json(Row)
    _, found = cache.check_user(FakeRedis({cache_keys.user(3): stale}), expected)
    assert [d.kind for d in found] == ["stale"]
    negative = cache.check_user(FakeRedis({cache_keys.user(3): rm.NEGATIVE}), expected)
    assert len(negative[1]) == 1
