"""One stream's work: read the feed when woken, send the difference, keep the socket honest.

Every wake-up (a notice concerning this reader, or a lost subscription) becomes, in order:
re-read the followees named by edge notices (or all of them), then re-read the head of the
feed exactly as ``GET /v1/feed?limit=<limit>`` does (``ReadModel.heads``, i.e. ``page``, and
``readmodel.items.hydrate``: same windows, same merge of pull authors, same hydration) and
send ``position.diff`` of the client's view against it. Notices arriving meanwhile set the
wake-up again, so a burst costs one more read, not one per notice. The blocking reads run on
the process's thread pool, batched across the streams woken together (``HeadReader``); the
event loop only routes and writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from feedline.readmodel import items
from feedline.readmodel.model import ReadModel
from feedline.stream import position
from feedline.stream.hub import Hub, Listener

T = TypeVar("T")
RETRY_MS = 1000  # EventSource's reconnect delay, sent once at the start of every stream


def frame(kind: str, event_id: str, data: bytes) -> bytes:
    """Return one SSE event (the JSON is compact: no newline inside ``data``)."""
    return b"id: " + event_id.encode() + b"\nevent: " + kind.encode() + b"\ndata: " + data + b"\n\n"


Head = tuple[dict[position.Position, bytes], position.Position | None]


def read_heads(reads: ReadModel, wanted: list[tuple[int, int]]) -> list[Head]:
    """Return, for each ``(reader, limit)``, the feed's head as ``GET /v1/feed?limit=``
    shows it (position -> item JSON, newest first) and the floor: the last row read if the
    feed goes on below it. All at once: ``ReadModel.heads`` per limit, one hydration."""
    pages = {}
    for limit in {limit for _, limit in wanted}:
        readers = [user for user, n in wanted if n == limit]
        for user, page in reads.heads(readers, limit).items():
            pages[(user, limit)] = page
    rows = [row for page in pages.values() for row in page.rows]
    objects = reads.objects(items.wanted(rows))
    out = []
    for key in wanted:
        page = pages[key]
        last = page.rows[-1] if page.rows else None
        floor = (last[0], last[1]) if page.next_cursor is not None and last else None
        found = items.hydrate(reads, page.rows, objects)
        out.append(({(row[0], row[1]): item for row, item in found}, floor))
    return out


class HeadReader:
    """Batch the head reads of streams woken together (one notice wakes every follower).

    A read is queued; a *round* takes everything queued and reads it on the thread pool
    with ``read_heads``. At most ``rounds`` are in flight: streams woken while they run
    wait for the next round, which takes them all. One thread and one round trip per
    round instead of one per stream: less Python, less contention for the GIL, and the
    new shard hydrated once for all its readers.
    """

    def __init__(self, reads: ReadModel, pool: Executor, rounds: int):
        self._reads = reads
        self._pool = pool
        self._rounds = rounds
        self._running = 0
        self._queue: list[tuple[int, int, asyncio.Future[Head]]] = []
        self._tasks: set[asyncio.Task] = set()  # rounds in flight (the loop keeps weak refs)

    async def head(self, user_id: int, limit: int) -> Head:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Head] = loop.create_future()
        self._queue.append((user_id, limit, future))
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
                wanted = [(user, limit) for user, limit, _ in batch]
                try:
                    heads = await loop.run_in_executor(self._pool, read_heads, self._reads, wanted)
                except Exception as exc:  # each stream decides (DependencyUnavailable: ends)
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), head in zip(batch, heads, strict=True):
                    if not future.done():
                        future.set_result(head)
        finally:
            self._running -= 1


def read_following(reads: ReadModel, user_id: int, only: set[int] | None) -> set[int]:
    """Return whom the reader follows: everyone, or which of ``only``."""
    if only is None:
        return {r.followee_id for r in reads.store.rows("following_ids", user_id)}
    return {r.followee_id for r in reads.store.rows("following_in", user_id, sorted(only))}


class Stream:
    """The events of one stream, from a starting view; iterate it to run the stream."""

    def __init__(
        self,
        hub: Hub,
        reads: ReadModel,
        pool: Executor,
        heads: HeadReader,
        listener: Listener,
        view: tuple[position.Position, ...],
        limit: int,
    ):
        self._hub = hub
        self._reads = reads
        self._pool = pool
        self._heads = heads
        self._listener = listener
        self._view = view
        self._limit = limit
        self.sent = 0

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
            if self._hub.closing or listener.gone:
                return
            listener.wake.clear()
            if listener.beat:  # the hub's tick (Hub.heartbeats): no timer per stream
                listener.beat = False
                yield b": heartbeat\n\n"
            if listener.dirty:
                listener.dirty = False
                await self._refresh_following()
                chunk = await self._catch_up()
                if chunk:
                    yield chunk

    async def _refresh_following(self) -> None:
        listener = self._listener
        if listener.reload:
            listener.reload = False
            listener.edges.clear()
            found = await self._run(read_following, self._reads, listener.user_id, None)
            self._hub.follows(listener, found, listener.following | found)
        elif listener.edges:
            named, listener.edges = listener.edges, set()
            found = await self._run(read_following, self._reads, listener.user_id, named)
            self._hub.follows(listener, found, named)

    async def _catch_up(self) -> bytes:
        head, floor = await self._heads.head(self._listener.user_id, self._limit)
        changes, self._view = position.diff(self._view, tuple(head), floor, self._limit)
        out = []
        for change in changes:
            event_id = position.encode(change.view, self._limit)
            if change.kind == "item":
                out.append(frame("item", event_id, head[change.position]))
            else:
                data = b'{"id":%d}' % change.position[1]
                out.append(frame("delete", event_id, data))
        self.sent += len(out)
        return b"".join(out)
