"""Serve pages of the read model: cached list windows, hydrated objects, signed cursors.

A list (a home feed, a user's shards, a shard's comments, followers, following) is cached
as a *window*: its first ``reads.window`` (100) positions, packed, plus whether that is the
whole list. Any first page of up to 100 items, and any later page whose cursor falls inside
the window, is served from it; other pages are clustering-range queries on Cassandra. Feed
and shard-list windows hold positions only (created_at, shard id, author id): the shards
and their authors' profiles are *hydrated* from their own keys (pre-serialised JSON, one
MGET for a whole page), so a like invalidates one shard key, not every feed holding it.

Keys and their meaning are the pipeline's (``feedline.cache_keys``, invalidated by the
strategies and fan-out): ``feed(user)`` and ``user_shards(author)`` hold windows of
positions, ``comments(shard)`` a window of whole comments, ``followers``/``following`` a
window of (user id, followed at); ``shard(id)``/``user(id)`` the hydrated objects. A shard
that is gone from shards_by_id hydrates to a negative entry and its items are dropped.

The formats are ``formats``'s and the CQL ``queries``'s; this class is where a page is
put together, so a merge at read time (rows that come from elsewhere than the owner's own
partition) belongs in ``ReadModel.page``. Failures are plain errors the caller maps: a
bad cursor is ``BadCursor``, an empty list of an owner that does not exist ``NotFound``,
Cassandra down ``DependencyUnavailable`` (Redis down is not an error: reads go on without).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from feedline import cache_keys
from feedline.db import Database
from feedline.errors import BadCursor, NotFound
from feedline.labelled import Children
from feedline.readmodel.cache import Cache
from feedline.readmodel.cursor import CursorCodec
from feedline.readmodel.formats import (
    AUTHOR,
    FEED,
    LEASE,
    NEGATIVE,
    OBJECT_KEYS,
    SERIALISE,
    VALUE,
    ListSpec,
    Window,
    to_ms,
)
from feedline.readmodel.merge import merge, window_start_ms, within
from feedline.readmodel.store import ReadStore
from feedline.settings import ReadSettings, Settings

logger = logging.getLogger(__name__)

PAIRS = struct.Struct(">qq")  # a cached pull source: (author id, followed at ms)
UNKNOWN = -(2**63)  # a follow of unknown time (its window holds every shard)

LOOKUPS = Counter("feedline_read_cache", "Read-path cache lookups by kind", ["kind", "result"])


@dataclass(frozen=True)
class Page:
    """Rows of one page, the cursor after them, and whether they came from the window.

    ``keys`` names the other cached windows a windowed page was made from (a merged
    feed page: its pull authors' shard lists).
    """

    rows: list[tuple[Any, ...]]
    next_cursor: str | None
    windowed: bool
    keys: tuple[str, ...] = ()


def _bounds(spec: ListSpec, position: tuple[int, ...]) -> tuple[Any, ...]:
    """Return the query bounds of a signed position; BadCursor if they are out of range.

    A signed position is ours, but a position signed with a leaked (or the development)
    secret can still hold any 64-bit value: a time past year 9999 is a bad cursor, not a 500.
    """
    try:
        return spec.after(position)
    except (OverflowError, ValueError):
        raise BadCursor("the cursor's position is out of range") from None


EXISTS_SQL = {
    "shard": "SELECT 1 FROM shards WHERE id = %s",
    "user": "SELECT 1 FROM users WHERE id = %s",
}


class ReadModel:
    """Pages and objects from Redis, falling back to Cassandra; see the module docstring."""

    def __init__(
        self,
        cache: Cache,
        store: ReadStore,
        db: Database,
        reads: ReadSettings,
        pull_window_ms: int | None = None,
    ):
        """``pull_window_ms`` is the follow's backfill window when pull authors exist
        (FEEDLINE_PULL_THRESHOLD > 0); None: every feed is one partition, nothing merged."""
        self.cache = cache
        self._pull_window_ms = pull_window_ms
        self.store = store
        self._db = db
        self._reads = reads
        self.cursors = CursorCodec(reads.cursor_secret, reads.cursor_secret_previous)
        self._ttl = {
            "feed": reads.feed_ttl_s,
            "author": reads.feed_ttl_s,
            "comments": reads.list_ttl_s,
            "followers": reads.list_ttl_s,
            "following": reads.list_ttl_s,
        }

    # -- lists ---------------------------------------------------------------------------

    def page(self, spec: ListSpec, owner: int, cursor: str | None, limit: int) -> Page:
        """Return up to ``limit`` rows after ``cursor`` and the cursor after them (or None)."""
        scope = f"{spec.name}:{owner}"
        after = None if cursor is None else self.cursors.decode(scope, cursor, spec.pos)
        bounds = None if after is None else _bounds(spec, after)
        if spec is FEED and self._pull_window_ms is not None:
            merged = self._merged(scope, owner, after, bounds, limit)
            if merged is not None:
                return merged
        if limit <= self._reads.window:
            served = _from_window(self._window(spec, owner), spec, after, limit)
            if served is not None:
                rows, more = served
                return Page(rows, self._next(scope, spec, rows, more), True)
        if after is None:
            found = self.store.rows(spec.name, owner, limit + 1)
        else:
            found = self.store.rows(f"{spec.name}_after", owner, *bounds, limit + 1)
        rows = [spec.row(r) for r in found]
        return Page(rows[:limit], self._next(scope, spec, rows[:limit], len(rows) > limit), False)

    def _merged(
        self,
        scope: str,
        owner: int,
        after: tuple[int, ...] | None,
        bounds: tuple[Any, ...] | None,
        limit: int,
    ) -> Page | None:
        """Return a feed page merged with the reader's pull authors, or None if they have
        none (docs/events.md, "Push and pull authors").

        The pull list is a superset: an author is merged only while the reader follows
        them (``following_by_user``, which also gives the follow's window). Each source is
        read ``limit`` + 1 rows after the position, from its cached window when it covers
        them (a pull author's window is shared by all their readers), so ``merge`` pages
        exactly like one feed partition holding every row.
        """
        edges = self._pull_sources(owner)
        if not edges:
            return None
        n = limit + 1
        lists = [(FEED, owner)] + [(AUTHOR, author) for author, _ in edges]
        windows = self._windows(lists) if n <= self._reads.window else [None] * len(lists)
        found = self._rows_after(lists, windows, after, bounds, n)
        (feed, windowed), pulled = found[0], found[1:]
        sources = [feed]
        for (_, followed), (rows, cached) in zip(edges, pulled, strict=True):
            sources.append(within(rows, window_start_ms(followed, self._pull_window_ms)))
            windowed = windowed and cached
        rows, more = merge(sources, limit)
        keys = (cache_keys.pull_sources(owner),)
        keys += tuple(cache_keys.user_shards(author) for author, _ in edges)
        return Page(rows, self._next(scope, FEED, rows, more), windowed, keys)

    def _pull_sources(self, owner: int) -> list[tuple[int, int | None]]:
        """Return the pull authors the reader follows and since when (ms; None: unknown).

        Cached in Redis under ``cache_keys.pull_sources`` (deleted by the pipeline with
        every change of the reader's pull list or follows), else read from Cassandra: the
        pull list, then which of those the reader follows (``following_by_user``).
        """
        return self._pull_sources_of([owner])[owner]

    def _pull_sources_of(self, owners: list[int]) -> dict[int, list[tuple[int, int | None]]]:
        """``_pull_sources`` of several readers: one Redis call, Cassandra for the misses."""
        keys = [cache_keys.pull_sources(owner) for owner in owners]
        token, entries = self._lookup(keys)
        out: dict[int, list[tuple[int, int | None]]] = {}
        fills = []
        for owner, key, entry in zip(owners, keys, entries, strict=True):
            if entry is not None and entry[:1] == VALUE:
                _counter("pull", "hit").inc()
                out[owner] = [
                    (a, None if t == UNKNOWN else t) for a, t in PAIRS.iter_unpack(entry[1:])
                ]
                continue
            _counter("pull", "miss").inc()
            listed = [r.author_id for r in self.store.rows("pull_following", owner)]
            edges = self.store.rows("following_in", owner, listed) if listed else []
            out[owner] = [
                (e.followee_id, None if e.created_at is None else to_ms(e.created_at))
                for e in edges
            ]
            if token is not None and entry == b"":
                packed = b"".join(PAIRS.pack(a, UNKNOWN if t is None else t) for a, t in out[owner])
                fills.append((key, VALUE + packed, self._reads.feed_ttl_s))
        if fills:
            self.cache.fill(token, fills)
        return out

    def heads(self, owners: list[int], limit: int) -> dict[int, Page]:
        """Return each owner's first feed page of ``limit`` rows, as ``page(FEED, owner,
        None, limit)`` returns it, for many feeds at once.

        The live stream re-reads every feed a notice woke together: one Redis call for
        their windows (and one for their pull lists), one Cassandra round trip for the
        windows missing, instead of a thread and a round trip each. A feed that merges
        pull authors, or a limit past the window, is read alone by ``page``.
        """
        owners = list(dict.fromkeys(owners))
        alone: set[int] = set()
        if limit > self._reads.window:
            alone = set(owners)
        elif self._pull_window_ms is not None:
            alone = {o for o, edges in self._pull_sources_of(owners).items() if edges}
        plain = [o for o in owners if o not in alone]
        out: dict[int, Page] = {}
        windows = self._windows([(FEED, o) for o in plain]) if plain else []
        for owner, window in zip(plain, windows, strict=True):
            served = _from_window(window, FEED, None, limit)
            if served is None:
                alone.add(owner)
                continue
            rows, more = served
            out[owner] = Page(rows, self._next(f"{FEED.name}:{owner}", FEED, rows, more), True)
        for owner in alone:
            out[owner] = self.page(FEED, owner, None, limit)
        return out

    def _rows_after(
        self,
        lists: list[tuple[ListSpec, int]],
        windows: list[Window | None],
        after: tuple[int, ...] | None,
        bounds: tuple[Any, ...] | None,
        n: int,
    ) -> list[tuple[list[tuple[Any, ...]], bool]]:
        """Return each list's next ``n`` rows after a position, and whether they came from
        its window; the lists the windows do not cover are read from Cassandra together
        (one round trip for a merged page, not one per pull author)."""
        out: list[tuple[list[tuple[Any, ...]], bool]] = []
        unserved: list[int] = []
        reads = []
        for (spec, owner), window in zip(lists, windows, strict=True):
            served = None if window is None else _from_window(window, spec, after, n)
            if served is not None:
                out.append((served[0], True))
                continue
            out.append(([], False))
            unserved.append(len(out) - 1)
            if after is None:
                reads.append((spec.name, (owner, n)))
            else:
                reads.append((f"{spec.name}_after", (owner, *bounds, n)))
        for i, found in zip(unserved, self.store.run(reads) if reads else (), strict=True):
            out[i] = ([lists[i][0].row(r) for r in found], False)
        return out

    def rendered(
        self, spec: ListSpec, name: str, build: Callable[[], tuple[bytes, list[str] | None]]
    ) -> bytes:
        """Serve a rendered response from this worker's near cache, else build and keep it.

        ``build`` returns the body and the cache keys it was made from (None: it used rows
        no key covers, so it is not kept). A kept page is dropped as soon as any of those
        keys changes in Redis (``NearCache.keep_derived``). It counts as a hit of ``spec``.
        """
        near = self.cache.copies()
        found = None if near is None else near.derived(name)
        if found is None:  # no copies (Redis failing, or not tracking yet)
            return build()[0]
        generation, body = found
        if body is not None:
            _counter(spec.name, "hit").inc()
            return body
        body, keys = build()
        if keys is not None:
            near.keep_derived(generation, name, body, keys)
        return body

    def _next(self, scope: str, spec: ListSpec, rows: list, more: bool) -> str | None:
        if not (more and rows):
            return None
        return self.cursors.encode(scope, tuple(rows[-1][: spec.pos]))

    def _window(self, spec: ListSpec, owner: int) -> Window:
        """Return the list's cached window, loading it under a lease on a miss.

        One Redis call either way: the lease script returns the entry when there is one and
        takes a lease when there is none.
        """
        key = spec.key(owner)
        token, (entry,) = self._lookup([key])
        if entry is not None and entry[:1] == VALUE:
            _counter(spec.name, "hit").inc()
            return spec.decode(entry)
        _counter(spec.name, "miss").inc()
        if entry is not None and entry[:1] == LEASE:
            # Another reader is loading it: wait briefly, else load for ourselves (no write).
            (entry,) = self.cache.wait_for([key])
            if entry is not None and entry[:1] == VALUE:
                return spec.decode(entry)
        window = self._load_window(spec, owner)
        if token is not None and entry == b"":  # b"": the lease is ours
            self.cache.fill(token, [(key, spec.encode(window), self._ttl[spec.name])])
        return window

    def _windows(self, lists: list[tuple[ListSpec, int]]) -> list[Window]:
        """Return several lists' windows with one Redis call; load and fill the misses.

        ``_window`` for many lists at once (a merged feed page: the reader's feed and each
        pull author's shard list).
        """
        keys = [spec.key(owner) for spec, owner in lists]
        token, entries = self._lookup(keys)
        out: list[Window | None] = []
        missing: list[tuple[int, ListSpec, int, bool]] = []  # (index, spec, owner, leased)
        for (spec, owner), key, entry in zip(lists, keys, entries, strict=True):
            if entry is not None and entry[:1] == VALUE:
                _counter(spec.name, "hit").inc()
                out.append(spec.decode(entry))
                continue
            _counter(spec.name, "miss").inc()
            if entry is not None and entry[:1] == LEASE:
                (entry,) = self.cache.wait_for([key])
                if entry is not None and entry[:1] == VALUE:
                    out.append(spec.decode(entry))
                    continue
            out.append(None)
            missing.append((len(out) - 1, spec, owner, token is not None and entry == b""))
        loaded = self._load_windows([(spec, owner) for _, spec, owner, _ in missing])
        fills = []
        for (i, spec, owner, leased), window in zip(missing, loaded, strict=True):
            out[i] = window
            if leased:
                fills.append((spec.key(owner), spec.encode(window), self._ttl[spec.name]))
        if fills:
            self.cache.fill(token, fills)
        return out

    def _lookup(self, keys: list[str]) -> tuple[bytes | None, list[bytes | None]]:
        """Return (lease token, per key: its entry, b"" if we now hold its lease, or None).

        None everywhere (and no token) when Redis is unavailable: load, write nothing.
        """
        leased = self.cache.lease(keys)
        if leased is None:
            return None, [None] * len(keys)
        return leased

    def _load_window(self, spec: ListSpec, owner: int) -> Window:
        return self._load_windows([(spec, owner)])[0]

    def _load_windows(self, lists: list[tuple[ListSpec, int]]) -> list[Window]:
        """Read several lists' windows from Cassandra in one concurrent round trip."""
        if not lists:
            return []
        size = self._reads.window
        found = self.store.run([(spec.name, (owner, size + 1)) for spec, owner in lists])
        windows = []
        for (spec, _), rows in zip(lists, found, strict=True):
            rows = [spec.row(r) for r in rows]
            windows.append(Window(rows[:size], len(rows) <= size))
        return windows

    # -- objects -------------------------------------------------------------------------

    def objects(self, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], bytes | None]:
        """Return each (kind, id)'s JSON, or None if the read model has no such object.

        One Redis call for all (values, or leases on the missing keys); keys another reader
        is loading are polled briefly, and the rest load from Cassandra in one query per
        kind; the ones we hold leases on are written back.
        """
        wanted = list(dict.fromkeys(wanted))
        if not wanted:
            return {}
        keys = [OBJECT_KEYS[kind](id_) for kind, id_ in wanted]
        token, entries = self._lookup(keys)
        out: dict[tuple[str, int], bytes | None] = {}
        mine, waiting, absent = [], [], []
        for i, entry in enumerate(entries):
            if entry is None:
                absent.append(i)
            elif entry == b"":
                mine.append(i)
            elif entry[:1] == LEASE:
                waiting.append(i)
            else:
                out[wanted[i]] = _payload(entry)
        _counter("object", "hit").inc(len(out))
        if len(out) < len(wanted):
            _counter("object", "miss").inc(len(wanted) - len(out))
        if waiting:
            polled = self.cache.wait_for([keys[i] for i in waiting])
            for i, entry in zip(waiting, polled, strict=True):
                if entry is not None:
                    out[wanted[i]] = _payload(entry)
                else:
                    absent.append(i)
        load = mine + absent
        if not load:
            return out
        leased_here = set(mine)
        loaded = self._load_objects([wanted[i] for i in load])
        fills = []
        for i in load:
            payload = loaded[wanted[i]]
            out[wanted[i]] = payload
            if token is not None and i in leased_here:
                entry = NEGATIVE if payload is None else VALUE + payload
                ttl = self._reads.negative_ttl_s if payload is None else self._reads.object_ttl_s
                fills.append((keys[i], entry, ttl))
        if fills:
            self.cache.fill(token, fills)
        return out

    def _load_objects(self, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], bytes | None]:
        """Load objects with one ``IN`` query per kind (run concurrently); absent ones are None."""
        ids: dict[str, list[int]] = {}
        for kind, id_ in wanted:
            ids.setdefault(kind, []).append(id_)
        kinds = list(ids)
        results = self.store.run([(kind, (ids[kind],)) for kind in kinds])
        out: dict[tuple[str, int], bytes | None] = dict.fromkeys(wanted)
        for kind, rows in zip(kinds, results, strict=True):
            for row in rows:
                out[(kind, row[0])] = SERIALISE[kind](row)
        return out

    def exists(self, kind: str, id_: int) -> bool:
        """Return True if the object is in the read model or, not yet replicated, PostgreSQL.

        Only asked for an empty list's owner (to tell "no items" from "no such owner"), so
        a brand-new user or shard gets an empty page, not a 404, before the pipeline runs.
        """
        if self.objects([(kind, id_)])[(kind, id_)] is not None:
            return True

        def probe(cur: Any) -> bool:
            cur.execute(EXISTS_SQL[kind], (id_,))
            return cur.fetchone() is not None

        return self._db.run(probe)

    def require(self, kind: str, id_: int, rows: list) -> None:
        """Raise NotFound when an empty first page belongs to an owner that does not exist."""
        if not rows and not self.exists(kind, id_):
            raise NotFound(kind, id_)


def _counter(kind: str, result: str) -> Any:
    """Return the labelled LOOKUPS child, made once (``labels`` is costly on a hot path)."""
    return _COUNTERS[(kind, result)]


_COUNTERS = Children(LOOKUPS)


def _payload(entry: bytes) -> bytes | None:
    return None if entry[:1] == NEGATIVE else entry[1:]


def _from_window(
    w: Window, spec: ListSpec, after: tuple[int, ...] | None, limit: int
) -> tuple[list[tuple[Any, ...]], bool] | None:
    """Serve a page from the window, or None when it needs rows past the window's end."""
    start = 0
    if after is not None:
        start = next((i for i, r in enumerate(w.rows) if spec.beyond(r, after)), len(w.rows))
    rows = w.rows[start : start + limit]
    end = start + len(rows)
    if len(rows) < limit and not w.complete:
        return None
    return rows, end < len(w.rows) or not w.complete


def read_model(settings: Settings, db: Database) -> ReadModel:
    """Build the read side (Redis cache in front of the Cassandra read model), unconnected."""
    reads = settings.reads
    pipeline = settings.pipeline
    # Pull authors' shards are merged into feeds at read time, in the follow's window.
    pull_window_ms = pipeline.backfill_window_s * 1000 if pipeline.pull_threshold > 0 else None
    return ReadModel(
        Cache(settings.redis.url, reads),
        ReadStore(settings.cassandra, reads),
        db,
        reads,
        pull_window_ms,
    )
