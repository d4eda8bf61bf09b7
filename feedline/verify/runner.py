"""Run verify: scoped to some users or over the whole database, once or until clean.

A whole-database run streams users from PostgreSQL and, for each, compares every
partition the user owns (see ``source.Expected``); then it pages through the distinct
partition keys of every Cassandra table to find partitions whose user or shard does not
exist in PostgreSQL at all (orphans). Ids above the snapshot's highest id are skipped
there: they belong to rows created after the snapshot, not to orphans.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tqdm import tqdm

from feedline.fanout import PULL, FeedTrims, in_window
from feedline.readmodel.partitions import Partitions
from feedline.settings import Settings
from feedline.verify import cache
from feedline.verify.model import (
    SHARD_TABLES,
    USER_TABLES,
    Difference,
    Partition,
    Report,
    Row,
    diff_partition,
    ms,
    untrimmed,
)
from feedline.verify.source import Expected, Source

OnDifference = Callable[[Difference], None]


def check_user(
    source: Source,
    model: Partitions,
    user_id: int,
    edge_lsn: int | None = None,
    pull_window_ms: int | None = None,
) -> tuple[Expected, dict[Partition, list[Row]], list[Difference]]:
    """Return what ``user_id``'s partitions should hold, what they hold, and the diffs.

    With pull authors (``pull_window_ms``: FEEDLINE_PULL_THRESHOLD > 0), the feed
    compared is the one a read shows, merged with the pull authors' shards
    (``merge_pulled``): rebuild then writes only what the merge does not show.
    """
    expected = source.expected(user_id, edge_lsn)
    actual = model.read([(t, user_id) for t in USER_TABLES])
    feed, index = ("feed_by_user", user_id), ("feed_by_user_author", user_id)
    pulled = [] if pull_window_ms is None else merge_pulled(model, user_id, actual, pull_window_ms)
    if pull_window_ms is not None and expected.beyond_cap and expected.partitions.get(feed):
        # A merged feed is not capped: what it shows past the cap's last row is not compared.
        line = min(_position(r) for r in expected.partitions[feed])
        for part in (feed, index):
            actual[part] = [
                r for r in actual[part] if not (r.get("pulled") and _position(r) < line)
            ]
    actual[feed], actual[index] = untrimmed(
        expected.partitions.get(feed, []), expected.beyond_cap, actual[feed], actual[index]
    )
    listed = {r["shard_id"] for r in actual[("shards_by_author", user_id)]}
    shards = expected.shard_ids | listed
    actual.update(model.read([(t, s) for s in shards for t in SHARD_TABLES]))
    found: list[Difference] = list(pulled)
    for part in sorted(set(actual) | set(expected.partitions)):
        table, key = part
        found += diff_partition(table, key, expected.partitions.get(part, []), actual.get(part, []))
    return expected, actual, found


def merge_pulled(
    model: Partitions, user_id: int, actual: dict[Partition, list[Row]], window_ms: int
) -> list[Difference]:
    """Add to ``actual``'s feed (and index) what a read merges in from pull authors, and
    return the pull-list entries that are missing.

    A read merges the shards, in the follow's window, of each author in the user's pull
    list whom the user follows (``ReadModel``, docs/events.md "Push and pull authors"),
    so the feed rows a pull author's shards did not get are not missing. The list is a
    superset: every followed author whose decision is pull must be in it (an entry for
    an author no longer followed, or push again, is harmless and not reported).
    """
    feed, index = ("feed_by_user", user_id), ("feed_by_user_author", user_id)
    edges = {r["followee_id"]: r["created_at"] for r in actual[("following_by_user", user_id)]}
    lists = ("pull_following_by_user", user_id)
    parts = model.read([lists, *(("author_mode", a) for a in edges)])
    listed = {r["author_id"] for r in parts[lists]} & set(edges)
    missing = [
        Difference("missing", "pull_following_by_user", user_id, a)
        for a in sorted(edges)
        if a not in listed and any(r["target"] == PULL for r in parts[("author_mode", a)])
    ]
    held = {r["shard_id"] for r in actual[feed]}
    shards = model.read([("shards_by_author", a) for a in sorted(listed)])
    for (_, author), rows in shards.items():
        for r in rows:
            if r["shard_id"] in held or not in_window(r["created_at"], edges[author], window_ms):
                continue
            held.add(r["shard_id"])
            row = {"user_id": user_id, "author_id": author, "pulled": True}
            row.update(created_at=r["created_at"], shard_id=r["shard_id"])
            actual[feed].append(row)
            actual[index].append(row)
    return missing


def cached_view(expected: Expected, actual: dict[Partition, list[Row]]) -> Expected:
    """Return ``expected`` as the cache should hold it: a cached feed window holds the feed
    partition's rows, not the rows a read merges in from pull authors (``merge_pulled``)."""
    feed = ("feed_by_user", expected.user_id)
    pulled = {r["shard_id"] for r in actual.get(feed, []) if r.get("pulled")}
    if not pulled or feed not in expected.partitions:
        return expected
    parts = dict(expected.partitions)
    parts[feed] = [r for r in parts[feed] if r["shard_id"] not in pulled]
    return dataclasses.replace(expected, partitions=parts)


def _position(row: Row) -> tuple[Any, int]:
    return ms(row["created_at"]), row["shard_id"]


def pull_window_ms(settings: Settings) -> int | None:
    """Return the backfill window a read merges pull authors in with; None if pull is off."""
    pipeline = settings.pipeline
    return pipeline.backfill_window_s * 1000 if pipeline.pull_threshold > 0 else None


def feed_cap(settings: Settings) -> dict[str, int]:
    """Return the Source arguments of the feed cap: FEEDLINE_FEED_MAX and the rows past
    it a feed may hold until its next trim (the writer's own FeedTrims.every)."""
    trims = FeedTrims.from_settings(settings.pipeline)
    return {"feed_max": trims.cap, "feed_slack": trims.every}


def verify(
    settings: Settings,
    users: Iterable[int] | None = None,
    *,
    on_difference: OnDifference | None = None,
    progress: bool | None = None,
    redis_client: Any = None,
) -> Report:
    """Compare the read model (and cached entries) with PostgreSQL; return a Report.

    ``users`` scopes the run; None checks everything, orphans included. ``progress``:
    True/False forces the bar on or off, None shows it on a terminal only.
    """
    report = Report()

    def add(found: list[Difference]) -> None:
        report.add(found)
        if on_difference is not None:
            for d in found:
                on_difference(d)

    with (
        Source(
            settings.postgres, settings.pipeline.backfill_window_s, **feed_cap(settings)
        ) as source,
        Partitions(settings.cassandra) as model,
    ):
        ids = list(users) if users is not None else None
        total = len(ids) if ids is not None else source.count_users()
        bar = tqdm(total=total, unit="user", desc="verify", disable=_no_bar(progress),
                   file=sys.stderr)  # fmt: skip
        with bar:
            for user_id in ids if ids is not None else source.user_ids():
                expected, actual, found = check_user(
                    source, model, user_id, pull_window_ms=pull_window_ms(settings)
                )
                report.users += 1
                report.shards += len(expected.shard_ids)
                report.partitions += len(set(actual) | set(expected.partitions))
                add(found)
                if redis_client is not None:
                    checked, stale = cache.check_user(redis_client, cached_view(expected, actual))
                    report.cache_entries += checked
                    add(stale)
                bar.update(1)
        if ids is None:
            add(list(orphans(source, model, report)))
    return report


def orphans(source: Source, model: Partitions, report: Report) -> Iterator[Difference]:
    """Yield an ``extra`` for every row of a partition whose user or shard is unknown."""
    for (table, key), rows in orphan_partitions(source, model):
        report.partitions += 1
        yield from diff_partition(table, key, [], rows)


def orphan_partitions(
    source: Source, model: Partitions, chunk: int = 500
) -> Iterator[tuple[Partition, list[Row]]]:
    """Yield each non-empty partition keyed by a user or shard id PostgreSQL does not have."""
    for tables, entity in ((USER_TABLES, "users"), (SHARD_TABLES, "shards")):
        ceiling = source.max_id(entity)
        for table in tables:
            keys: list[int] = []
            for key in model.partition_keys(table):
                keys.append(key)
                if len(keys) >= chunk:
                    yield from _unknown(source, model, table, entity, keys, ceiling)
                    keys = []
            yield from _unknown(source, model, table, entity, keys, ceiling)


def _unknown(
    source: Source, model: Partitions, table: str, entity: str, keys: list[int], ceiling: int
) -> Iterator[tuple[Partition, list[Row]]]:
    if not keys:
        return
    known = source.existing(entity, keys)
    unknown = [k for k in keys if k not in known and k <= ceiling]
    for part, rows in model.read([(table, k) for k in unknown]).items():
        if rows:
            yield part, rows


def verify_until_clean(
    settings: Settings,
    users: Iterable[int] | None,
    wait_s: float,
    *,
    interval_s: float = 1.0,
    progress: bool | None = None,
    redis_client: Any = None,
    on_attempt: Callable[[Report], None] | None = None,
) -> Report:
    """Re-run ``verify`` until it is clean or ``wait_s`` has passed; return the last run.

    The pipeline is asynchronous: right after a write, or while it catches up after an
    outage, differences are expected and must go away by themselves.
    """
    ids = list(users) if users is not None else None
    deadline = time.monotonic() + wait_s
    while True:
        report = verify(settings, ids, progress=progress, redis_client=redis_client)
        if on_attempt is not None:
            on_attempt(report)
        if report.clean or time.monotonic() + interval_s > deadline:
            return report
        time.sleep(interval_s)


def _no_bar(progress: bool | None) -> bool | None:
    return None if progress is None else not progress
