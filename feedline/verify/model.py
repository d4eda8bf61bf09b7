"""Name the read-model rows verify compares, and diff one partition (pure functions).

A partition is compared row by row on an *identity* column (what makes a row "the same
thing": a shard id in a feed, a follower id in a follower list) rather than on the whole
primary key, so a row whose clustering value drifted (e.g. a created_at with another
precision) shows up as a duplicate or a stale row instead of one missing plus one extra.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KINDS = ("missing", "extra", "duplicate", "stale")


@dataclass(frozen=True)
class View:
    """How verify reads one table: its partition key, row identity and compared columns."""

    table: str
    partition: str
    identity: str
    compared: tuple[str, ...]


VIEWS: dict[str, View] = {
    v.table: v
    for v in (
        View(
            "users_by_id",
            "user_id",
            "user_id",
            ("handle", "follower_count", "following_count", "shard_count", "created_at"),
        ),
        View(
            "shards_by_id",
            "shard_id",
            "shard_id",
            ("author_id", "body", "like_count", "comment_count", "created_at"),
        ),
        View("shards_by_author", "author_id", "shard_id", ("created_at",)),
        View("feed_by_user", "user_id", "shard_id", ("created_at", "author_id")),
        View("feed_by_user_author", "user_id", "shard_id", ("author_id", "created_at")),
        View("comments_by_shard", "shard_id", "comment_id", ("created_at", "author_id", "body")),
        View("likes_by_shard", "shard_id", "user_id", ("created_at",)),
        View("followers_by_user", "user_id", "follower_id", ("created_at",)),
        View("following_by_user", "user_id", "followee_id", ("created_at",)),
    )
}
USER_TABLES = (
    "users_by_id",
    "shards_by_author",
    "feed_by_user",
    "feed_by_user_author",
    "followers_by_user",
    "following_by_user",
)
SHARD_TABLES = ("shards_by_id", "comments_by_shard", "likes_by_shard")

Row = Mapping[str, Any]
Partition = tuple[str, int]  # (table, partition key value)


@dataclass(frozen=True)
class Difference:
    """One way the read model differs from PostgreSQL."""

    kind: str  # one of KINDS
    table: str
    partition: int
    identity: int | str
    expected: tuple[Any, ...] | None = None
    actual: tuple[Any, ...] | None = None

    def __str__(self) -> str:
        view = VIEWS.get(self.table)
        where = (
            f"{view.partition}={self.partition} {view.identity}={self.identity}"
            if view
            else f"{self.partition} {self.identity}"
        )
        text = f"{self.kind:<9} {self.table} {where}"
        if self.expected is not None:
            text += f" expected={_show(self.expected)}"
        if self.actual is not None:
            text += f" actual={_show(self.actual)}"
        return text


@dataclass
class Report:
    """What was checked, every difference counted, and the first ``keep`` of them kept.

    Keeping only a bounded number keeps memory bounded when the read model is far off
    (an empty Cassandra would otherwise hold one object per row of the database).
    """

    keep: int = 1000
    differences: list[Difference] = field(default_factory=list)
    by_kind: Counter = field(default_factory=Counter)
    users: int = 0
    shards: int = 0
    partitions: int = 0
    cache_entries: int = 0

    def add(self, found: Iterable[Difference]) -> None:
        for d in found:
            self.by_kind[d.kind] += 1
            if len(self.differences) < self.keep:
                self.differences.append(d)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    @property
    def clean(self) -> bool:
        return self.total == 0

    def counts(self) -> dict[str, int]:
        return {k: self.by_kind.get(k, 0) for k in KINDS}

    def summary(self) -> str:
        checked = (
            f"checked {self.users} users, {self.shards} shards, {self.partitions} partitions, "
            f"{self.cache_entries} cache entries"
        )
        if self.clean:
            return f"verify: OK, 0 differences ({checked})"
        by_kind = ", ".join(f"{k} {n}" for k, n in self.counts().items())
        return f"verify: {self.total} differences ({by_kind}; {checked})"


def ms(value: datetime) -> datetime:
    """Return ``value`` as Cassandra stores it: naive UTC, truncated to milliseconds."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def values(view: View, row: Row) -> tuple[Any, ...]:
    """Return the compared columns of ``row``, timestamps normalised like Cassandra's."""
    return tuple(ms(row[c]) if isinstance(row[c], datetime) else row[c] for c in view.compared)


def diff_partition(
    table: str, key: int, expected: Iterable[Row], actual: Iterable[Row]
) -> list[Difference]:
    """Compare the rows a partition should hold with the rows it holds."""
    view = VIEWS[table]
    want = {row[view.identity]: values(view, row) for row in expected}
    seen: dict[Any, list[tuple[Any, ...]]] = {}
    for row in actual:
        seen.setdefault(row[view.identity], []).append(values(view, row))
    found: list[Difference] = []
    for ident, exp in want.items():
        got = seen.get(ident)
        if not got:
            found.append(Difference("missing", table, key, ident, expected=exp))
        elif len(got) > 1:
            found.append(Difference("duplicate", table, key, ident, exp, tuple(got)))
        elif got[0] != exp:
            found.append(Difference("stale", table, key, ident, exp, got[0]))
    for ident, got in seen.items():
        if ident not in want:
            kind = "duplicate" if len(got) > 1 else "extra"
            found.append(Difference(kind, table, key, ident, actual=got[0]))
    return found


def untrimmed(
    kept: list[Row], beyond: list[Row], feed: list[Row], index: list[Row]
) -> tuple[list[Row], list[Row]]:
    """Return the feed and index rows to compare with a bounded expected feed.

    ``kept`` is the expected feed (its newest rows, up to the cap), ``beyond`` the
    expected rows just past the cap. A feed is trimmed only every few rows (docs/events.md,
    "Bounded feeds"), so it may still hold some of ``beyond``: they are left out while the
    feed holds no more than ``kept`` and ``beyond`` together. Index rows below the cap's
    last row are dead (nothing reads a feed row back from them; the next trim cuts them)
    and are left out too. An expected feed within the cap is compared whole.
    """
    if not beyond or not kept:
        return feed, index
    line = min(_position(r) for r in kept)
    pending = {r["shard_id"] for r in beyond}
    if len(feed) <= len(kept) + len(beyond):
        feed = [r for r in feed if not (_position(r) < line and r["shard_id"] in pending)]
    return feed, [r for r in index if _position(r) >= line]


def _position(row: Row) -> tuple[datetime, int]:
    return ms(row["created_at"]), row["shard_id"]


def _show(value: tuple[Any, ...]) -> str:
    parts = [v.isoformat(timespec="milliseconds") if isinstance(v, datetime) else repr(v)
             for v in value]  # fmt: skip
    return "(" + ", ".join(parts) + ")"
