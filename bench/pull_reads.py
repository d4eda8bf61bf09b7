"""Seed the reads benchmark's readers of 5 pull authors and their push twins (issue 16).

A *pull reader* follows 5 pull authors and holds nothing in its own feed partition: its
first page is the merge of the authors' shards (their cached windows are shared by all
their readers). Its *push twin* holds the same 150 shards (5 authors x 30) in its feed
partition, as a push reader of those authors would: the same 20 items from one partition.
``bench.reads`` times both under the same conditions, the twin being the baseline.

There are ``GROUPS`` such pairs, each with its own 5 authors, one per connection of the
miss figures: a connection drops only its own group's windows before each read, so "every
window missing" stays true while the other connections read.

Seeding writes the read model directly (making an author pull through the API takes
1,500 follows): the authors and readers are real users (PostgreSQL, so tokens work and
their profiles come through CDC); the shards (shards_by_id, shards_by_author) and the
twins' feed rows are written into the bench keyspace at timestamp 1; ``seed.big_author``
writes each author's settled pull decision, the pull reader's follow edge and pull-list
entry. Each author's PostgreSQL follower count is then set above the threshold, so the
mode check the pipeline plans for that change agrees (pull), and ``check_modes`` reads the
decisions back once the pipeline has caught up. ``check_page`` proves a page holds the
expected items before anything is timed.
"""

from __future__ import annotations

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
    count = 2 * settings.pipeline.pull_threshold
    for g in groups:
        for author in g.authors:
            seed.set_follower_count(settings, author, count)
    return groups


def check_modes(settings: Settings, groups: list[Group]) -> None:
    """Fail unless every author's decision reads pull and settled (after the pipeline ran
    the mode checks the follower counts planned)."""
    select = st.get(st.SELECT_AUTHOR_MODE)
    cluster, session = cassandra.connect(settings.cassandra)
    try:
        prepared = session.prepare(select.cql)
        for author in (a for g in groups for a in g.authors):
            rows = list(session.execute(prepared, select.bind_values((author,))))
            mode = rows[0] if rows else None
            if mode is None or mode.target != "pull" or mode.settled_lsn != mode.target_lsn:
                raise RuntimeError(f"author {author} is not a settled pull author: {mode}")
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
