"""One stream's work: read the feed when woken, send the difference, keep the socket honest.

Every wake-up (a notice concerning this reader, or a lost subscription) becomes, in order:
re-read the followees named by edge notices (or all of them), then re-read the head of the
feed exactly as ``GET /v1/feed?limit=<limit>`` does (``ReadModel.heads``, i.e. ``page``, and
``readmodel.items.hydrate``: same windows, same merge of pull authors, same hydration) and
send ``position.diff`` of the client's view against it. Notices arriving meanwhile set the
wake-up again, so a burst costs one more read, not one per notice. The blocking reads run on
the process's thread pool, batched across the streams woken together (``Reader``); the
event loop only routes and writes. A new shard that surely tops the reader's feed
(``on_top``) is the exception: it is sent without re-reading the feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from feedline import notices
from feedline.readmodel import items
from feedline.readmodel.formats import to_ms
from feedline.readmodel.model import ReadModel
from feedline.stream import position
from feedline.stream.hub import Hub, Listener

T = TypeVar("T")
RETRY_MS = 1000  # EventSource's reconnect delay, sent once at the start of every stream


def frame(kind: str, event_id: str, data: bytes) -> bytes:
    """Return one SSE event (the JSON is compact: no newline inside ``data``)."""
    return b"id: " + event_id.encode() + b"\nevent: " + kind.encode() + b"\ndata: " + data + b"\n\n"


Head = tuple[dict[position.Position, bytes], position.Position | None]
Row = tuple[int, int, int]  # (created_at ms, shard id, author id): a feed position


def read_round(
    reads: ReadModel, wanted: list[tuple[int, int]], rows: list[Row]
) -> tuple[list[Head], dict[Row, bytes | None]]:
    """Return, for each ``(reader, limit)``, the feed's head as ``GET /v1/feed?limit=``
    shows it (position -> item JSON, newest first) and the floor: the last row read if the
    feed goes on below it; and each of ``rows`` as an item (None: its shard is gone). All
    at once: ``ReadModel.heads`` per limit, then one hydration for everything."""
    pages = {}
    for limit in {limit for _, limit in wanted}:
        readers = [user for user, n in wanted if n == limit]
        for user, page in reads.heads(readers, limit).items():
            pages[(user, limit)] = page
    every = [row for page in pages.values() for row in page.rows] + rows
    objects = reads.objects(items.wanted(every))
    heads = []
    for key in wanted:
        page = pages[key]
        last = page.rows[-1] if page.rows else None
        floor = (last[0], last[1]) if page.next_cursor is not None and last else None
        found = items.hydrate(reads, page.rows, objects)
        heads.append(({(row[0], row[1]): item for row, item in found}, floor))
    hydrated = dict.fromkeys(rows)
    hydrated.update(items.hydrate(reads, rows, objects))
    return heads, hydrated


class Reader:
    """Batch the reads of streams woken together (one notice wakes every follower).

    A read (a feed's head, or a new shard as an item) is queued; a *round* takes
    everything queued and reads it on the thread pool with ``read_round``. At most
    ``rounds`` are in flight: streams woken while they run wait for the next round, which
    takes them all. One thread and one round trip per round instead of one per stream:
    less Python, less contention for the GIL, and a new shard hydrated once for all.
    """

    def __init__(self, reads: ReadModel, pool: Executor, rounds: int):
        self._reads = reads
        self._pool = pool
        self._rounds = rounds
        self._running = 0
        self._queue: list[tuple[tuple[int, int] | Row, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()  # rounds in flight (the loop keeps weak refs)
        self.counts = {"rounds": 0, "heads": 0, "items": 0}  # for /health

    async def head(self, user_id: int, limit: int) -> Head:
        return await self._ask((user_id, limit))

    async def item(self, row: Row) -> bytes | None:
        return await self._ask(row)

    async def _ask(self, request: tuple[int, int] | Row) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((request, future))
        if self._running < self._rounds:
            self._running += 1
            task = loop.create_task(self._round())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _round(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                wanted = [r for r, _ in batch if len(r) == 2]
                rows = [r for r, _ in batch if len(r) == 3]
                self.counts["rounds"] += 1
                self.counts["heads"] += len(wanted)
                self.counts["items"] += len(rows)
                try:
                    heads, hydrated = await loop.run_in_executor(
                        self._pool, read_round, self._reads, wanted, rows
                    )
                except Exception as exc:  # each stream decides (DependencyUnavailable: ends)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                answers = iter(heads)
                for request, future in batch:
                    answer = next(answers) if len(request) == 2 else hydrated[request]
                    if not future.done():
                        future.set_result(answer)
        finally:
            self._running -= 1


def read_following(reads: ReadModel, user_id: int, only: set[int] | None) -> dict[int, int | None]:
    """Return whom the reader follows (everyone, or which of ``only``) and since when (ms)."""
    if only is None:
        found = reads.store.rows("following_ids", user_id)
    else:
        found = reads.store.rows("following_in", user_id, sorted(only))
    return {r.followee_id: None if r.created_at is None else to_ms(r.created_at) for r in found}


def on_top(
    view: tuple[position.Position, ...],
    shard: notices.ShardNotice,
    reader: int,
    following: dict[int, int | None],
) -> bool:
    """Return True if a new shard surely is the newest item of the reader's feed now, so a
    stream may put it on top of ``view`` (a view equal to the feed's head) without a read.

    True when: the reader wrote it, or follows its author since before it was created (so
    its fan-out, done before the notice, wrote it into the reader's feed, or a pull
    author's merge shows it); and it sorts above everything in the view (nothing newer is
    in the feed). Anything else (an older shard, a replayed notice, a follow younger than
    the shard, whose window the read model decides) takes the read.
    """
    at = (shard.created_ms, shard.shard_id)
    if view and at <= view[0]:
        return False
    if shard.author_id == reader:
        return True
    followed = following.get(shard.author_id)
    return followed is not None and followed <= shard.created_ms


class Stream:
    """The events of one stream, from a starting view; iterate it to run the stream."""

    def __init__(
        self,
        hub: Hub,
        reads: ReadModel,
        pool: Executor,
        reader: Reader,
        listener: Listener,
        view: tuple[position.Position, ...],
        limit: int,
    ):
        self._hub = hub
        self._reads = reads
        self._pool = pool
        self._reader = reader
        self._listener = listener
        self._view = view
        self._limit = limit

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def events(self) -> AsyncIterator[bytes]:
        """Yield SSE bytes: the catch-up from the starting view, then live changes and
        heartbeats, until the hub closes or the client hangs up. The listener must be
        registered already; notices during a read set ``dirty`` again: one more read."""
        listener = self._listener
        yield f"retry: {RETRY_MS}\n\n".encode()
        listener.notify()  # the first pass reads whom they follow and the feed
        while True:
            await listener.wake.wait()
            if self._hub.closing or listener.gone or listener.revoked:
                return
            listener.wake.clear()
            if listener.beat:  # the hub's tick (Hub.heartbeats): no timer per stream
                listener.beat = False
                yield b": heartbeat\n\n"
            if listener.offers and not listener.dirty:
                chunk = await self._put_on_top()  # or, if they do not all fit, read
                if chunk:
                    yield chunk
            if listener.dirty:
                listener.dirty = False
                listener.offers.clear()  # the read after them covers them
                await self._refresh_following()
                chunk = await self._catch_up()
                if chunk:
                    yield chunk

    async def _put_on_top(self) -> bytes:
        """Send new shards as items without reading the feed, if each is ``on_top``;
        otherwise mark the stream dirty (a read follows at once)."""
        listener = self._listener
        offers = sorted(dict.fromkeys(listener.offers), key=lambda n: (n.created_ms, n.shard_id))
        listener.offers.clear()
        view = self._view
        fits = []
        for shard in offers:
            if (shard.created_ms, shard.shard_id) in view:
                continue  # a replayed notice
            if not on_top(view, shard, listener.user_id, listener.following):
                listener.dirty = True
                return b""
            fits.append(shard)
            view = ((shard.created_ms, shard.shard_id), *view)[: self._limit]
        out = []
        for shard in fits:
            row = (shard.created_ms, shard.shard_id, shard.author_id)
            item = await self._reader.item(row)
            if listener.dirty:  # a notice came meanwhile: the read will decide
                return b"".join(out)
            if item is None:
                continue  # deleted already: its purge's notice follows
            at = (shard.created_ms, shard.shard_id)
            self._view = (at, *self._view)[: self._limit]
            out.append(frame("item", position.encode(self._view, self._limit), item))
        return b"".join(out)

    async def _refresh_following(self) -> None:
        listener = self._listener
        if listener.reload:
            listener.reload = False
            listener.edges.clear()
            found = await self._run(read_following, self._reads, listener.user_id, None)
            self._hub.follows(listener, found, set(listener.following) | set(found))
        elif listener.edges:
            named, listener.edges = listener.edges, set()
            found = await self._run(read_following, self._reads, listener.user_id, named)
            self._hub.follows(listener, found, named)

    async def _catch_up(self) -> bytes:
        head, floor = await self._reader.head(self._listener.user_id, self._limit)
        changes, self._view = position.diff(self._view, tuple(head), floor, self._limit)
        out = []
        for change in changes:
            event_id = position.encode(change.view, self._limit)
            if change.kind == "item":
                out.append(frame("item", event_id, head[change.position]))
            else:
                data = b'{"id":%d}' % change.position[1]
                out.append(frame("delete", event_id, data))
        return b"".join(out)
