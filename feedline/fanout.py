"""Expand fan-out steps into feed mutations by reading the read model.

Strategies stay pure by describing fan-out (``FanOutShard``, ``Backfill``, ``Unbackfill``,
``PurgeShard``) instead of doing it; the writer calls ``Expander.expand`` after the
event's own mutations are written. The timestamps chosen here carry the convergence
argument of docs/events.md: a follower's feed row is decided by the newest event about
the follow edge (its LSN) and by that follow's window, and a deleted shard's rows are
deleted for good (TERMINAL).

Each expansion is a *program*: a generator that yields the reads it needs (a list of
``Read``s, issued together) and is sent back their rows, and finally returns its
``Writes``, whose ``recheck`` is another program. ``Expander`` runs programs against a
Cassandra session; the convergence tests (tests/unit/strategies/lww.py) run these very
programs against a model of Cassandra, one read or write at a time, interleaved with other
writers. So the code that is proven to converge is the code that runs.

Big expansions are done in steps (issue 16, no head-of-line blocking): a program returns
at most ``chunk`` followers' or rows' writes, and ``Writes.more`` makes the program of the
next step. Fan-out and purge read followers a page at a time by clustering position
(``follower_id > last``); a backfill or an unbackfill reads its one slice and writes it a
chunk per step. The writer runs one step of a big event between other events' work.

Every feed row a follow puts in a feed has an index row in ``feed_by_user_author``
(written and deleted with it, same batch, same timestamp): an unfollow reads the
(follower, author) slice there instead of scanning the feed, and a shard delete reads one
index row per follower and tombstones only rows that exist.

Feeds are bounded (``FeedTrims``, ``trimmed``, ``trim``): the ``Expander`` counts the rows
each step writes into each feed, and a feed that took ``cap x slack`` rows since its last
trim is cut back to its newest ``cap`` with range tombstones, as a step of its own.
"""

from __future__ import annotations

import math
import random
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from cassandra.concurrent import execute_concurrent

from feedline import cache_keys, cassandra
from feedline import statements as st
from feedline.settings import PipelineSettings
from feedline.strategies.base import (
    TERMINAL,
    Backfill,
    Expansion,
    FanOutShard,
    ModeCheck,
    Mutation,
    PurgeShard,
    Unbackfill,
)
from feedline.strategies.common import mutation

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
READ_CHUNK = 5000  # reads bound and in flight per step of one program round
CHUNK = PipelineSettings.expansion_chunk  # followers or feed rows per step, by default
BEFORE_ALL = -(2**63)  # below every follower id: the first page starts after it


@dataclass(frozen=True)
class Read:
    """One read a program needs: a named SELECT of ``feedline.statements`` and its binds."""

    statement: str
    params: tuple[Any, ...]


Rows = list[Any]  # rows with attribute access (the driver's named tuples)
Program = Generator[list[Read], list[Rows], T]


@dataclass(frozen=True)
class Writes:
    """What an expansion program returns: its mutations, the cache keys they touch, and
    (optionally) a factory of the program that re-validates them once they are written."""

    mutations: list[Mutation]
    keys: set[str]
    recheck: Callable[[], Program[list[Mutation]]] | None = None
    # The next step of the same expansion, run once these writes and their recheck are done.
    more: Callable[[], Program[Writes]] | None = None


# -- the backfill window ---------------------------------------------------------------


def epoch_ms(value: datetime) -> int:
    """Return ``value`` in whole milliseconds since 1970 (naive values are UTC, as the
    driver returns Cassandra timestamps; aware ones as the decoder makes them)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // timedelta(milliseconds=1)


def window_start(followed_at: datetime, window_ms: int) -> datetime:
    """Return the oldest ``created_at`` a follow made at ``followed_at`` puts in the feed."""
    return EPOCH + timedelta(milliseconds=epoch_ms(followed_at) - window_ms)


def in_window(shard_created: datetime, followed_at: datetime | None, window_ms: int) -> bool:
    """Return True if a follow made at ``followed_at`` puts this shard in the feed.

    An edge without a known creation time (rows written around the pipeline, e.g. seeded
    by a benchmark) has no window: every shard of the author belongs.
    """
    if followed_at is None:
        return True
    return epoch_ms(shard_created) >= epoch_ms(followed_at) - window_ms


# -- the programs ----------------------------------------------------------------------


def program(
    expansion: Expansion, window_ms: int, chunk: int = CHUNK, pull: PullPolicy | None = None
) -> Program[Writes]:
    """Return the program of the first step of ``expansion`` (``Writes.more`` the rest).

    ``pull`` is the hybrid fan-out's policy; None (FEEDLINE_PULL_THRESHOLD=0): every
    author is push, and no program reads or writes a mode or a pull list.
    """
    on = pull is not None
    if isinstance(expansion, FanOutShard):
        return fan_out(expansion, window_ms, chunk, pull=pull)
    if isinstance(expansion, Backfill):
        return backfill(expansion, window_ms, chunk, pull=on)
    if isinstance(expansion, Unbackfill):
        return unbackfill(expansion, chunk, pull=on)
    if isinstance(expansion, PurgeShard):
        return purge(expansion, window_ms, chunk)
    if isinstance(expansion, ModeCheck):
        return mode_check(expansion, window_ms, chunk, pull)
    raise TypeError(f"unknown expansion {expansion!r}")


def fan_out(
    e: FanOutShard,
    window_ms: int,
    chunk: int = CHUNK,
    after: int = BEFORE_ALL,
    pull: PullPolicy | None = None,
) -> Program[Writes]:
    """Put a new shard in each follower's feed whose window holds it, at that edge's LSN.

    One step is one page of followers after ``after``: it is written, then re-validated
    (the page's id range read again), before the next page is read. Each cell's order of
    events (shard written, edge read, row written, row re-validated) is as in one big step.
    With ``pull``, the first step also reads the author's mode once the first page shows
    enough followers to be worth skipping (``PullPolicy.worth_asking``): a settled pull
    author's shard is written nowhere else (readers merge it in).
    """
    [followers] = yield [Read(st.SELECT_FOLLOWERS_PAGE, (e.author_id, after, chunk))]
    if pull is not None and after == BEFORE_ALL and pull.worth_asking(len(followers), chunk):
        [mode] = yield [Read(st.SELECT_AUTHOR_MODE, (e.author_id,))]
        if mode_of(mode).skips:
            return Writes([], set())
    more = next_page(followers, chunk, lambda last: fan_out(e, window_ms, chunk, last))
    written = {
        r.follower_id: (r.edge_lsn if r.edge_lsn is not None else e.lsn)
        for r in followers
        if in_window(e.created_at, r.created_at, window_ms)
    }
    mutations = [
        m
        for f, ts in written.items()
        for m in feed_insert(f, e.author_id, e.created_at, e.shard_id, ts)
    ]

    if not written:
        return Writes([], set(), None, more)
    first, last = min(written), max(written)

    def recheck() -> Program[list[Mutation]]:
        [shard, now] = yield [
            Read(st.SELECT_AUTHOR_SHARD, (e.author_id, e.created_at, e.shard_id)),
            Read(st.SELECT_FOLLOWERS_BETWEEN, (e.author_id, first, last)),
        ]
        if not shard:
            return [
                m
                for f in written
                for m in feed_delete(f, e.author_id, e.created_at, e.shard_id, TERMINAL)
            ]
        edges = {r.follower_id: r.created_at for r in now}
        return [
            m
            for f, ts in written.items()
            if f not in edges or not in_window(e.created_at, edges[f], window_ms)
            for m in feed_delete(f, e.author_id, e.created_at, e.shard_id, ts)
        ]

    return Writes(mutations, {cache_keys.feed(f) for f in written}, recheck, more)


def next_page(
    rows: Rows, chunk: int, make: Callable[[int], Program[Writes]]
) -> Callable[[], Program[Writes]] | None:
    """Return the factory of the next page's program, or None after a short (last) page."""
    if len(rows) < chunk:
        return None
    last = rows[-1].follower_id
    return lambda: make(last)


def in_steps(
    mutations: list[Mutation],
    keys: set[str],
    size: int,
    recheck: Callable[[], Program[list[Mutation]]] | None = None,
) -> Writes:
    """Return the first ``size`` mutations as one step, the rest as further steps, in order;
    the re-validation goes with the last step, so it runs after every write is done."""
    if len(mutations) <= size:
        return Writes(mutations, keys, recheck)
    rest = mutations[size:]
    return Writes(
        mutations[:size], keys, None, lambda: no_reads(in_steps(rest, keys, size, recheck))
    )


def no_reads(writes: Writes) -> Program[Writes]:
    """Return a program that reads nothing and returns ``writes`` (a step of a slice)."""
    return writes
    yield  # a generator, like every program


def backfill(
    e: Backfill, window_ms: int, chunk: int = CHUNK, pull: bool = False
) -> Program[Writes]:
    """Make the follower's feed hold exactly the followee's shards in the follow's window.

    Writes the window's shards at the follow's LSN, and deletes at that LSN whatever the
    index holds of the pair below the window (rows of an older edge, or written before
    windows existed): a newer edge event's writes are above it and win. The slices are read
    once; the writes go ``chunk`` feed rows (a row and its index row) per step, and the
    re-validation after the last. With ``pull``, a follow of an author whose decision is
    pull also puts the author in the follower's pull list (docs/events.md, "Push and pull
    authors"), at max(this LSN, the decision's).
    """
    f, a, ts = e.follower_id, e.followee_id, e.lsn
    since = window_start(e.created_at, window_ms)
    reads = [Read(st.SELECT_AUTHOR_SHARDS_SINCE, (a, since)), Read(st.SELECT_FEED_INDEX, (f, a))]
    if pull:
        reads.append(Read(st.SELECT_AUTHOR_MODE, (a,)))
    found = yield reads
    shards, held = found[0], found[1]
    written = [(r.created_at, r.shard_id) for r in shards]
    mutations = [m for c, s in written for m in feed_insert(f, a, c, s, ts)]
    if pull and (mode := mode_of(found[2])).target == PULL:
        mutations.insert(0, pull_entry(f, a, max(ts, mode.target_lsn)))
    mutations += [
        m
        for r in held
        if not in_window(r.created_at, e.created_at, window_ms)
        for m in feed_delete(f, a, r.created_at, r.shard_id, ts)
    ]

    def recheck() -> Program[list[Mutation]]:
        [edge, latest] = yield [
            Read(st.SELECT_EDGE, (f, a)),
            Read(st.SELECT_AUTHOR_SHARDS_SINCE, (a, since)),
        ]
        still = {r.shard_id for r in latest}  # a shard leaves shards_by_author only deleted
        out = [m for c, s in written if s not in still for m in feed_delete(f, a, c, s, TERMINAL)]
        followed_at = edge[0].created_at if edge else None
        return out + [
            m
            for c, s in written
            if s in still and (not edge or not in_window(c, followed_at, window_ms))
            for m in feed_delete(f, a, c, s, ts)
        ]

    keys = {cache_keys.feed(f), *([cache_keys.pull_sources(f)] if pull else [])}
    # The re-validation only ever deletes rows this backfill wrote: none written, none read.
    return in_steps(mutations, keys, 2 * chunk, recheck if written else None)


def unbackfill(e: Unbackfill, chunk: int = CHUNK, pull: bool = False) -> Program[Writes]:
    """Delete what the follower's feed holds from the followee, at the unfollow's LSN.

    Reading the index (what IS in the feed, not shards_by_author) also finds a shard whose
    delete raced this unfollow; rows written after this read are cleaned up by their
    writer's recheck, which finds the edge gone. The index slice goes with one range
    tombstone; nothing is written when the feed holds nothing of the followee. The feed
    rows go ``chunk`` per step and the index tombstone alone in the last step, after them
    all: a crash in between leaves the index whole, so the re-sent event finds every row.
    With ``pull``, the followee leaves the follower's pull list at the unfollow's LSN too.
    """
    f, a = e.follower_id, e.followee_id
    [rows] = yield [Read(st.SELECT_FEED_INDEX, (f, a))]
    writes = unbackfill_steps(e, rows, chunk)
    if pull:
        gone = mutation(st.DELETE_PULL_FOLLOWING, (f, a), e.lsn)
        keys = writes.keys | {cache_keys.pull_sources(f)}
        writes = replace(writes, mutations=[gone, *writes.mutations], keys=keys)
    return writes


def unbackfill_steps(e: Unbackfill, rows: Rows, chunk: int) -> Writes:
    """Return an unfollow's deletes of the indexed ``rows``: feed rows a chunk per step,
    then the index slice's range tombstone alone."""
    f, a = e.follower_id, e.followee_id
    if not rows:
        return Writes([], {cache_keys.feed(f)})
    keys = {cache_keys.feed(f)}
    last = Writes([mutation(st.DELETE_FEED_INDEX_AUTHOR, (f, a), e.lsn)], keys)

    def step(left: list[Any]) -> Writes:
        if not left:
            return last
        deletes = [
            mutation(st.DELETE_FEED_ITEM, (f, r.created_at, r.shard_id), e.lsn)
            for r in left[:chunk]
        ]
        return Writes(deletes, keys, None, lambda: no_reads(step(left[chunk:])))

    return step(rows)


def purge(
    e: PurgeShard, window_ms: int, chunk: int = CHUNK, after: int = BEFORE_ALL
) -> Program[Writes]:
    """Delete a deleted shard, for good, from the feeds that hold it (and only those).

    Followers whose window does not hold the shard cannot have its row once their
    writers' rechecks are done, and a recheck that runs after this read finds the shard
    gone and deletes at TERMINAL itself. One step is one page of followers after ``after``.
    """
    [followers] = yield [Read(st.SELECT_FOLLOWERS_PAGE, (e.author_id, after, chunk))]
    more = next_page(followers, chunk, lambda last: purge(e, window_ms, chunk, last))
    candidates = [
        r.follower_id for r in followers if in_window(e.created_at, r.created_at, window_ms)
    ]
    reads = [
        Read(st.SELECT_FEED_INDEX_ITEM, (f, e.author_id, e.created_at, e.shard_id))
        for f in candidates
    ]
    found = (yield reads) if reads else []
    holders = [f for f, rows in zip(candidates, found, strict=True) if rows]
    mutations = [
        m for f in holders for m in feed_delete(f, e.author_id, e.created_at, e.shard_id, TERMINAL)
    ]
    return Writes(mutations, {cache_keys.feed(f) for f in holders}, None, more)


def own_feed(expansion: Expansion) -> list[int]:
    """Return the feed a new shard's own mutations write into (its author's), if any."""
    return [expansion.author_id] if isinstance(expansion, FanOutShard) else []


def feed_insert(
    user_id: int, author_id: int, created_at: Any, shard_id: int, ts: int
) -> list[Mutation]:
    """Return the writes of one followed author's row in a feed: the row and its index."""
    return [
        mutation(st.INSERT_FEED_ITEM, (user_id, created_at, shard_id, author_id), ts),
        mutation(st.INSERT_FEED_INDEX, (user_id, author_id, created_at, shard_id), ts),
    ]


def feed_delete(
    user_id: int, author_id: int, created_at: Any, shard_id: int, ts: int
) -> list[Mutation]:
    """Return the deletes of one followed author's row in a feed and of its index row."""
    return [
        mutation(st.DELETE_FEED_ITEM, (user_id, created_at, shard_id), ts),
        mutation(st.DELETE_FEED_INDEX, (user_id, author_id, created_at, shard_id), ts),
    ]


# -- hybrid fan-out: push and pull authors (issue 16) --------------------------------

PUSH, PULL = "push", "pull"


@dataclass(frozen=True)
class PullPolicy:
    """Decide an author's mode from their follower count, with hysteresis.

    Pull above ``threshold`` followers, push again below ``threshold * hysteresis``; in
    between the author keeps the mode they have, so an author near the line does not flap.
    """

    threshold: int
    hysteresis: float

    @classmethod
    def from_settings(cls, pipeline: PipelineSettings) -> PullPolicy | None:
        """Return the policy, or None while pull is off (FEEDLINE_PULL_THRESHOLD=0)."""
        if pipeline.pull_threshold <= 0:
            return None
        return cls(pipeline.pull_threshold, pipeline.pull_hysteresis)

    def worth_asking(self, first_page: int, chunk: int) -> bool:
        """Return True if a fan-out whose first page of followers holds ``first_page``
        rows (``chunk`` at most) should read the author's mode to maybe skip them.

        Only a skip needs the mode: copying a shard into followers' feeds is correct in
        any mode (the rows obey the push argument, and a pull author's merge dedupes
        them). A short page is every follower the author has; below threshold x
        hysteresis the policy itself keeps an author push, so copying to so few costs no
        more than a push author's post, and the read is spared (issue 17: most posts).
        """
        return first_page >= chunk or first_page >= self.threshold * self.hysteresis

    def decide(self, follower_count: int, current: str) -> str:
        if follower_count > self.threshold:
            return PULL
        if follower_count < self.threshold * self.hysteresis:
            return PUSH
        return current


@dataclass(frozen=True)
class Mode:
    """An author's mode decision, its LSN, and whether its sweep is done (settled)."""

    target: str
    target_lsn: int
    settled: bool

    @property
    def skips(self) -> bool:
        """Return True if a new shard of the author is copied into no follower's feed."""
        return self.target == PULL and self.settled


def mode_of(rows: Rows) -> Mode:
    """Return the mode held in ``author_mode`` rows (no row, or no decision: push)."""
    if not rows or rows[0].target is None:
        return Mode(PUSH, 0, True)
    r = rows[0]
    return Mode(r.target, r.target_lsn or 0, r.settled_lsn == r.target_lsn)


def pull_entry(user_id: int, author_id: int, ts: int) -> Mutation:
    """Return the write of ``author_id`` into ``user_id``'s pull list at ``ts``."""
    return mutation(st.INSERT_PULL_FOLLOWING, (user_id, author_id), ts)


def mode_check(
    e: ModeCheck, window_ms: int, chunk: int, pull: PullPolicy | None
) -> Program[Writes]:
    """Decide the author's mode from a follower count; on a change, sweep the followers.

    A decision is written at the users event's LSN, then swept a page of followers per
    step (``sweep``), then settled. An event older than the standing decision changes
    nothing; the event that made an unsettled decision, re-delivered after a crash,
    resumes its sweep from the start (every step is idempotent); any other event leaves
    a sweep under way alone (one sweep per crossing, however many follows arrive).
    """
    if pull is None:
        return Writes([], set())
    [rows] = yield [Read(st.SELECT_AUTHOR_MODE, (e.author_id,))]
    now = mode_of(rows)
    if e.lsn < now.target_lsn:
        return Writes([], set())
    want = pull.decide(e.follower_count, now.target)
    if want == now.target:
        # Only the deciding event resumes its sweep (re-delivered: it was not acknowledged
        # before its last step); later events leave a running sweep alone.
        if now.settled or e.lsn != now.target_lsn:
            return Writes([], set())
        return (yield from sweep(e.author_id, want, now.target_lsn, window_ms, chunk))
    decided = mutation(st.DECIDE_AUTHOR_MODE, (e.author_id, want, e.lsn), e.lsn)
    return Writes([decided], set(), None, lambda: sweep(e.author_id, want, e.lsn, window_ms, chunk))


def sweep(
    author: int, target: str, lsn: int, window_ms: int, chunk: int, after: int = BEFORE_ALL
) -> Program[Writes]:
    """Move one page of the author's followers to the decision ``target`` made at ``lsn``.

    Pull: put the author in each follower's pull list, at max(edge LSN, ``lsn``). Push:
    backfill each follower's window of the author's shards at the edge's LSN, re-validate,
    then take the author out of their pull lists at max(edge LSN, ``lsn``) (higher than
    any entry of an older decision). After the last page, settle the decision.
    """
    [followers] = yield [Read(st.SELECT_FOLLOWERS_PAGE, (author, after, chunk))]
    more = next_page(
        followers, chunk, lambda last: sweep(author, target, lsn, window_ms, chunk, last)
    ) or (lambda: no_reads(Writes([mutation(st.SETTLE_AUTHOR_MODE, (author, lsn), lsn)], set())))
    at = {r.follower_id: max(r.edge_lsn or 0, lsn) for r in followers}
    keys = {k for f in at for k in (cache_keys.feed(f), cache_keys.pull_sources(f))}
    if target == PULL:
        return Writes([pull_entry(f, author, ts) for f, ts in at.items()], keys, None, more)
    drop = Writes(
        [mutation(st.DELETE_PULL_FOLLOWING, (f, author), ts) for f, ts in at.items()],
        keys,
        None,
        more,
    )
    if not followers:
        return drop
    writes = yield from catch_up(author, followers, window_ms, chunk)
    return chained(writes, lambda: no_reads(drop))


def catch_up(author: int, followers: Rows, window_ms: int, chunk: int) -> Program[Writes]:
    """Write each follower's window of the author's shards into their feed (a fan-out of
    every shard the author posted while pull), at each edge's LSN, then re-validate as a
    fan-out does: a shard gone is deleted at TERMINAL, a row whose edge is gone or no
    longer holds it at the timestamp it was written."""
    edges = {r.follower_id: (r.edge_lsn or 0, r.created_at) for r in followers}
    since = min(
        (window_start(c, window_ms) if c is not None else EPOCH for _, c in edges.values()),
    )
    [shards] = yield [Read(st.SELECT_AUTHOR_SHARDS_SINCE, (author, since))]
    cells = [
        (f, r.created_at, r.shard_id, ts)
        for f, (ts, followed_at) in edges.items()
        for r in shards
        if in_window(r.created_at, followed_at, window_ms)
    ]
    mutations = [m for f, c, s, ts in cells for m in feed_insert(f, author, c, s, ts)]
    keys = {cache_keys.feed(f) for f, *_ in cells}
    first, last = min(edges), max(edges)

    def recheck() -> Program[list[Mutation]]:
        [latest, now] = yield [
            Read(st.SELECT_AUTHOR_SHARDS_SINCE, (author, since)),
            Read(st.SELECT_FOLLOWERS_BETWEEN, (author, first, last)),
        ]
        still = {r.shard_id for r in latest}
        current = {r.follower_id: r.created_at for r in now}
        out: list[Mutation] = []
        for f, c, s, ts in cells:
            if s not in still:
                out += feed_delete(f, author, c, s, TERMINAL)
            elif f not in current or not in_window(c, current[f], window_ms):
                out += feed_delete(f, author, c, s, ts)
        return out

    return in_steps(mutations, keys, 2 * chunk, recheck if cells else None)


def chained(writes: Writes, after: Callable[[], Program[Writes]]) -> Writes:
    """Return ``writes`` with ``after`` run once its last step (and recheck) is done."""
    if writes.more is None:
        return replace(writes, more=after)
    nxt = writes.more

    def rest() -> Program[Writes]:
        w = yield from nxt()
        return chained(w, after)

    return replace(writes, more=rest)


# -- bounded feeds (issue 16) ---------------------------------------------------------


class FeedTrims:
    """Decide which feeds to trim: count the rows written into each since its last trim.

    A feed keeps its newest ``cap`` rows. Knowing a feed's length takes reading it, so a
    feed is read (and trimmed) only once ``every`` (cap x slack) rows were written into it
    since its last trim: about one read of ~cap keys per ``every`` inserts, never a read
    per insert, and a feed holds at most about cap + every rows. A feed's count starts at
    a random value below ``every``, so the followers of one author do not all come due on
    the same post, and a count that is lost (a restart; the table is emptied once it
    tracks ``tracked`` feeds) delays that feed's trim by ``every`` / 2 rows on average.
    One instance is shared by a process's writers (thread-safe).
    """

    def __init__(
        self, cap: int, slack: float, tracked: int = 1_000_000, rnd: random.Random | None = None
    ):
        self.cap = max(1, cap)
        self.every = max(1, math.ceil(self.cap * slack))
        self._tracked = tracked
        self._counts: dict[int, int] = {}
        self._lock = threading.Lock()
        self._random = rnd or random.Random()

    @classmethod
    def from_settings(cls, pipeline: PipelineSettings) -> FeedTrims:
        return cls(pipeline.feed_max, pipeline.feed_trim_slack)

    def due(self, mutations: Iterable[Mutation], also: Iterable[int] = ()) -> list[int]:
        """Count the feed rows ``mutations`` insert (and one row for each of ``also``);
        return the feeds that are due for a trim, their counts starting afresh."""
        written = Counter(m.params[0] for m in mutations if m.statement == st.INSERT_FEED_ITEM)
        written.update(also)
        out = []
        with self._lock:
            if len(self._counts) + len(written) > self._tracked:
                self._counts.clear()
            for user, n in written.items():
                count = self._counts.get(user)
                count = (self._random.randrange(self.every) if count is None else count) + n
                if count >= self.every:
                    out.append(user)
                    count = 0
                self._counts[user] = count
        return sorted(out)


TRIM_FEEDS = 8  # feeds trimmed per step (each reads its feed and feed index partitions)


def trimmed(prog: Program[Writes], trims: FeedTrims, also: Iterable[int] = ()) -> Program[Writes]:
    """Run ``prog``; once its writes (and recheck) are done, trim the feeds they made due.

    The trims go as steps of their own before the expansion's next step, so a trim's
    read sees the rows that made it due. ``also`` names feeds the event's own mutations
    wrote (the author's row of a new shard). Every later step is wrapped the same way.
    """
    writes = yield from prog
    after = writes.more
    more = (lambda: trimmed(after(), trims)) if after is not None else None
    due = trims.due(writes.mutations, also)
    for i in reversed(range(0, len(due), TRIM_FEEDS)):
        more = _then(due[i : i + TRIM_FEEDS], trims.cap, more)
    return replace(writes, more=more)


def _then(
    users: list[int], cap: int, after: Callable[[], Program[Writes]] | None
) -> Callable[[], Program[Writes]]:
    return lambda: trim(users, cap, after)


def trim(
    users: list[int], cap: int, after: Callable[[], Program[Writes]] | None = None
) -> Program[Writes]:
    """Cut each of ``users``' feeds to its newest ``cap`` rows: one range tombstone below
    the cap's last row, and one per author of the feed index's rows below it.

    The tombstones are written at the highest write timestamp of the feed's live rows,
    so they shadow every row they cut and every later or replayed copy of a row of an
    edge already in the feed (written at that edge's LSN); a row of a newer edge (a new
    follow's backfill) outlives it, and the next trim cuts it (docs/events.md, "Bounded
    feeds"). The index is read on its own (not through the feed's rows) so that index
    rows whose feed row an earlier trim already shadowed go too.
    """
    reads = [
        Read(name, (u,)) for u in users for name in (st.SELECT_FEED_TRIM, st.SELECT_FEED_INDEX_ALL)
    ]
    found = yield reads
    mutations: list[Mutation] = []
    keys: set[str] = set()
    for i, user in enumerate(users):
        cut = trim_feed(user, found[2 * i], found[2 * i + 1], cap)
        if cut:
            mutations += cut
            keys.add(cache_keys.feed(user))
    return Writes(mutations, keys, None, after)


def trim_feed(user: int, feed: Rows, index: Rows, cap: int) -> list[Mutation]:
    """Return the deletes that cut one feed (its rows ``feed``, its index rows ``index``)
    to its newest ``cap`` rows; none if it holds no more."""
    if len(feed) <= cap:
        return []
    line = sorted(((r.created_at, r.shard_id) for r in feed), reverse=True)[cap]
    ts = max(r.written or 0 for r in feed)
    authors = sorted({r.author_id for r in index if (r.created_at, r.shard_id) <= line})
    return [
        mutation(st.DELETE_FEED_BELOW, (user, *line), ts),
        *(mutation(st.DELETE_FEED_INDEX_BELOW, (user, a, *line), ts) for a in authors),
    ]


# -- running programs on Cassandra -----------------------------------------------------


class PreparedStatements:
    """Prepare every registered statement once per session and bind mutations to them."""

    def __init__(self, session: Any):
        self._prepared = {
            name: session.prepare(s.cql) if s.is_write else cassandra.prepare_read(session, s.cql)
            for name, s in st.STATEMENTS.items()
        }
        # Per statement, what binding a mutation needs, looked up once per mutation.
        self._writes = {
            name: (self._prepared[name], s) for name, s in st.STATEMENTS.items() if s.is_write
        }

    def bind(self, mutation: Mutation) -> Any:
        write = self._writes.get(mutation.statement)
        if write is None:  # not a write: st.get names what is wrong
            return self._prepared[mutation.statement].bind(st.bind_values(mutation))
        prepared, statement = write
        return prepared.bind(statement.bind_values(mutation.params, mutation.timestamp))

    def query(self, name: str, *params: Any) -> Any:
        return self._prepared[name].bind(st.get(name).bind_values(params))


@dataclass(frozen=True)
class Expanded:
    """An expansion's feed writes, the cache keys they touch, and their re-validation.

    ``recheck`` runs after ``mutations`` are written and returns the deletes that undo
    rows whose edge or shard vanished meanwhile: a concurrent unfollow or shard delete
    may have read the feed before our write landed, so the writer of a row cleans it up.
    Each call runs the re-validation afresh (the writer retries it on transient errors).
    ``more``, if set, expands the next step (runs its reads); call it only once these
    writes and their re-validation are done. Each call starts that step afresh.
    """

    mutations: list[Mutation]
    keys: set[str]
    recheck: Callable[[], list[Mutation]] = field(default=lambda: [])
    more: Callable[[], Expanded] | None = None


class Expander:
    """Turn one expansion into its feed writes, reading what it needs."""

    def __init__(
        self,
        session: Any,
        prepared: PreparedStatements,
        pipeline: PipelineSettings,
        trims: FeedTrims | None = None,
        reads: Any = None,
    ):
        """``reads``, if given, holds a counter's children by statement name (the
        pipeline's ``reads_by_statement``, of ``feedline_cassandra_reads_total``): each
        read sent counts once."""
        self._session = session
        self._reads = reads
        self._prepared = prepared
        self._trims = trims or FeedTrims.from_settings(pipeline)
        self._window_ms = pipeline.backfill_window_s * 1000
        self._concurrency = max(1, pipeline.read_concurrency)
        self._chunk = max(1, pipeline.expansion_chunk)
        self._pull = PullPolicy.from_settings(pipeline)

    def expand(self, expansion: Expansion) -> Expanded:
        """Expand the first step of ``expansion``; ``more`` of the result the next one."""
        prog = program(expansion, self._window_ms, self._chunk, self._pull)
        return self.step(trimmed(prog, self._trims, own_feed(expansion)))

    def step(self, prog: Program[Writes]) -> Expanded:
        writes = self.run(prog)
        make, after = writes.recheck, writes.more
        more = (lambda: self.step(after())) if after is not None else None
        if make is None:
            return Expanded(writes.mutations, writes.keys, more=more)
        return Expanded(writes.mutations, writes.keys, lambda: self.run(make()), more)

    def run(self, prog: Program[T]) -> T:
        """Run ``prog`` to its end, answering each round of reads; return its result."""
        try:
            reads = next(prog)
            while True:
                reads = prog.send(self._read(reads))
        except StopIteration as done:
            return done.value

    def _read(self, reads: list[Read]) -> list[Rows]:
        """Run one round of reads (concurrently, in bounded chunks); all pages of each."""
        if self._reads is not None:
            for name, n in Counter(r.statement for r in reads).items():
                self._reads[name].inc(n)
        if len(reads) == 1:
            r = reads[0]
            return [list(self._session.execute(self._prepared.query(r.statement, *r.params)))]
        out: list[Rows] = []
        for i in range(0, len(reads), READ_CHUNK):
            statements = [
                (self._prepared.query(r.statement, *r.params), None)
                for r in reads[i : i + READ_CHUNK]
            ]
            results = execute_concurrent(
                self._session, statements, concurrency=self._concurrency, raise_on_first_error=True
            )
            out += [list(result.result_or_exc) for result in results]
        return out
