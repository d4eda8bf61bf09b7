"""Seed the reads benchmark's readers of 5 pull authors and their push twins (issue 16).

A *pull reader* follows 5 pull authors and holds nothing in its own feed partition: its
first page is the merge of the authors' shards (their cached windows are shared by all
their readers). Its *push twin* holds the same 150 shards (5 authors x 30) in its feed
partition, as a push reader of those authors would: the same 20 items from one partition.
``bench.reads`` times both under the same conditions, the twin being the baseline.

There are ``GROUPS`` such pairs, each with its own 5 authors, one per connection of the
miss figures: a connection drops only its own group's windows before each read, so "every
window missing" stays true while the other connections read.

Seeding writes the read model directly (making an author pull through the API takes more
than FEEDLINE_PULL_THRESHOLD follows): the authors and readers are real users (tokens,
profiles through CDC); the shards (shards_by_id, shards_by_author) and the
twins' feed rows are written into the bench keyspace at timestamp 1; ``seed.big_author``
writes each author's settled pull decision, the pull reader's follow edge and pull-list
entry. Each author's PostgreSQL follower count is then set above the threshold, so the
mode check the pipeline plans for that change agrees (pull); ``check_modes`` waits for
the pipeline to have processed the counts, then checks the decisions. ``check_page``
proves a page holds the expected items before anything is timed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cassandra.concurrent import execute_concurrent

from bench import seed
from bench.client import Http
from feedline import cache_keys, cassandra
from feedline import statements as st
from feedline.settings import Settings

AUTHORS, SHARDS, GROUPS = 5, 30, 3
PAGE = 20
SHARD_BASE = 710_000_000_000  # above the reads benchmark's shard pool (700e9 + i)
FEED_PATH = f"/v1/feed?limit={PAGE}"


@dataclass(frozen=True)
class Group:
    """A pull reader, its push twin, the 5 pull authors, and the first page both must see."""

    pull: seed.User
    push: seed.User
    authors: tuple[int, ...]
    first_page: tuple[int, ...]  # shard ids, newest first

    def windows(self) -> list[str]:
        """The authors' cached windows (shared by every reader of theirs)."""
        return [cache_keys.user_shards(a) for a in self.authors]

    def cached(self) -> list[str]:
        """Every Redis key the two first pages are made of: windows, pull sources, objects."""
        readers = (self.pull.id, self.push.id)
        keys = [cache_keys.feed(r) for r in readers] + self.windows()
        keys += [cache_keys.pull_sources(r) for r in readers]
        keys += [cache_keys.user(a) for a in self.authors]
        return keys + [cache_keys.shard(s) for s in self.first_page]


def available(settings: Settings) -> bool:
    """Pull is on (FEEDLINE_PULL_THRESHOLD > 0): the bench web merges pull authors in."""
    return settings.pipeline.pull_threshold > 0


def seed_groups(settings: Settings, prefix: str) -> list[Group]:
    """Create ``GROUPS`` pull readers, twins and authors; write their read-model rows."""
    users = seed.create_users(settings, prefix, GROUPS * (AUTHORS + 2))
    now = datetime.now(UTC).replace(microsecond=0)
    followed_at = now - timedelta(days=1)
    groups: list[Group] = []
    cluster, session = cassandra.connect(settings.cassandra)
    try:
        shard = session.prepare(st.get(st.UPSERT_SHARD).cql)
        listed = session.prepare(st.get(st.INSERT_AUTHOR_SHARD).cql)
        feed = session.prepare(st.get(st.INSERT_FEED_ITEM).cql)
        work: list = []
        for g in range(GROUPS):
            pull, push, *authors = users[g * (AUTHORS + 2) : (g + 1) * (AUTHORS + 2)]
            rows = []
            for i, author in enumerate(a.id for a in authors):
                for j in range(SHARDS):
                    sid = SHARD_BASE + (g * AUTHORS + i) * SHARDS + j
                    created = now - timedelta(seconds=j * 7 + i)  # distinct within a group
                    rows.append((created, sid))
                    body = (sid, author, f"pull read {sid}", 0, 0, created)
                    work.append((shard, st.get(st.UPSERT_SHARD).bind_values(body, 1)))
                    at = (author, created, sid)
                    work.append((listed, st.get(st.INSERT_AUTHOR_SHARD).bind_values(at, 1)))
                    item = (push.id, created, sid, author)
                    work.append((feed, st.get(st.INSERT_FEED_ITEM).bind_values(item, 1)))
            first = tuple(sid for _, sid in sorted(rows, reverse=True)[:PAGE])
            groups.append(Group(pull, push, tuple(a.id for a in authors), first))
        for ok, res in execute_concurrent(session, work, concurrency=64, results_generator=True):
            if not ok:
                raise res
        for g in groups:
            for author in g.authors:
                seed.big_author(
                    session, author, [g.pull.id], [g.pull.id], pull=True, followed_at=followed_at
                )
    finally:
        cluster.shutdown()
    for g in groups:
        for author in g.authors:
            seed.set_follower_count(settings, author, 2 * settings.pipeline.pull_threshold)
    return groups


def check_modes(settings: Settings, groups: list[Group], timeout: float = 60.0) -> None:
    """Wait until the pipeline has processed every author's follower count, then fail
    unless each author's decision is a settled pull.

    The count's users event plans a mode check; it agrees with the seeded decision (pull),
    so it writes nothing and sweeps nothing: no sweep deletes the readers' cached keys in
    the middle of a measurement. Its profile row carrying the count shows it was processed.
    """
    select = st.get(st.SELECT_AUTHOR_MODE)
    count = 2 * settings.pipeline.pull_threshold
    authors = [a for g in groups for a in g.authors]
    cluster, session = cassandra.connect(settings.cassandra)
    try:
        mode_of = session.prepare(select.cql)
        profile = session.prepare("SELECT follower_count FROM users_by_id WHERE user_id = ?")
        deadline = time.monotonic() + timeout
        while authors:
            rows = list(session.execute(profile, (authors[0],)))
            if not rows or rows[0].follower_count != count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"author {authors[0]}: follower count not in the profile")
                time.sleep(0.5)
                continue
            rows = list(session.execute(mode_of, select.bind_values((authors[0],))))
            mode = rows[0] if rows else None
            if mode is None or mode.target != "pull" or mode.settled_lsn != mode.target_lsn:
                raise RuntimeError(f"author {authors[0]} is not a settled pull author: {mode}")
            authors.pop(0)
    finally:
        cluster.shutdown()


def page_ids(body: object) -> list[int]:
    """The shard ids of a feed page's items (empty for anything but a feed page)."""
    items = body.get("items") if isinstance(body, dict) else None
    return [int(i["id"]) for i in items or []]


def check_page(port: int, token: str, group: Group) -> None:
    """Fail unless the reader's first page on the web at ``port`` is the group's 20 items."""
    reply = Http(port).call("GET", FEED_PATH, token)
    got = page_ids(reply.body)
    if reply.status != 200 or got != list(group.first_page):
        raise RuntimeError(
            f"feed page on {port}: status {reply.status}, items {got[:3]}... "
            f"({len(got)}), expected {list(group.first_page[:3])}... ({PAGE})"
        )
