"""One stream's work: read the feed when woken, send the difference, keep the socket honest.

Every wake-up (a notice concerning this reader, or a lost subscription) becomes, in order:
re-read the followees named by edge notices (or all of them), then re-read the head of the
feed exactly as ``GET /v1/feed?limit=<limit>`` does (``ReadModel.page`` and
``readmodel.items.hydrate``: same windows, same merge of pull authors, same hydration) and
send ``position.diff`` of the client's view against it. Notices arriving meanwhile set the
wake-up again, so a burst costs one more read, not one per notice. The blocking reads run on
the process's thread pool; the event loop only routes and writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from feedline.readmodel.formats import FEED
from feedline.readmodel.items import hydrate
from feedline.readmodel.model import ReadModel
from feedline.stream import position
from feedline.stream.hub import Hub, Listener

T = TypeVar("T")
RETRY_MS = 1000  # EventSource's reconnect delay, sent once at the start of every stream


def frame(kind: str, event_id: str, data: bytes) -> bytes:
    """Return one SSE event (the JSON is compact: no newline inside ``data``)."""
    return b"id: " + event_id.encode() + b"\nevent: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def read_head(
    reads: ReadModel, user_id: int, limit: int
) -> tuple[dict[position.Position, bytes], position.Position | None]:
    """Return the feed's head as ``GET /v1/feed`` shows it (position -> item JSON, newest
    first), and the floor: the last row read if the feed goes on below it."""
    page = reads.page(FEED, user_id, None, limit)
    rows = page.rows
    floor = (rows[-1][0], rows[-1][1]) if page.next_cursor is not None and rows else None
    return {(row[0], row[1]): item for row, item in hydrate(reads, rows)}, floor


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
        listener: Listener,
        view: tuple[position.Position, ...],
        limit: int,
    ):
        self._hub = hub
        self._reads = reads
        self._pool = pool
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
        head, floor = await self._run(read_head, self._reads, self._listener.user_id, self._limit)
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
