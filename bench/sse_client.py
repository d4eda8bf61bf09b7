"""Cheap SSE clients for the stream benchmark: thousands of streams in one asyncio process.

Each stream is an ``asyncio.Protocol`` on a raw socket to 127.0.0.1 (no HTTP library): it
sends ``GET /v1/feed/stream`` with a bearer token (and ``Last-Event-ID`` to resume), then
parses the chunked body's SSE lines as they arrive, noting for every ``item`` and ``delete``
event the shard id and when it arrived (``time.monotonic()``, system-wide on Linux, so
comparable with the bench's and the notice listener's clocks), and its last event id.

A ``Fleet`` runs these clients in a child process (spawned: the bench process holds
driver threads) and is driven over a pipe, so the load generator's threads never delay a
client's timestamps, and the client's own CPU can be reported (is it the bottleneck?).
``Notices`` is a second small child: subscribed to the pipeline's notice channel, it notes
when each ``shard A S MS`` notice (A posted S) arrived.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import time
from collections import defaultdict
from multiprocessing.connection import Connection
from typing import Any

PATH = "/v1/feed/stream"


class SseProtocol(asyncio.Protocol):
    """One stream: its response status, its events (kind, shard id, time), its last id."""

    def __init__(self, fleet: _FleetState, key: int, request: bytes):
        self.fleet, self.key, self.request = fleet, key, request
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.connected_at: float | None = None  # the `retry:` line: the stream is open
        self.closed = False
        self.last_id: str | None = None
        self.heartbeats = 0
        self._head = True
        self._buf = b""  # raw bytes not parsed yet (headers, chunk framing)
        self._sse = b""  # SSE text not parsed yet (an event may span chunks)
        self._chunk_left = 0  # payload bytes still due in the current chunk (+2 for CRLF)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.fleet.closed(self)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._head:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self._buf = self._buf[:end], self._buf[end + 4 :]
            self._head = False
            self.status = int(head.split(b" ", 2)[1])
            if self.status != 200:
                self.fleet.failed(self)
                if self.transport is not None:
                    self.transport.close()
                return
        self._dechunk()

    def _dechunk(self) -> None:
        buf = self._buf
        while buf:
            if self._chunk_left == 0:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    break
                size = int(buf[:eol].split(b";", 1)[0], 16)
                buf = buf[eol + 2 :]
                if size == 0:  # the server ended the stream
                    buf = b""
                    break
                self._chunk_left = size + 2
            before = self._chunk_left
            take = buf[:before]
            buf = buf[len(take) :]
            self._chunk_left = before - len(take)
            self._sse += take[: max(0, min(len(take), before - 2))]  # not the chunk's CRLF
        self._buf = buf
        if b"\n\n" in self._sse:
            *blocks, self._sse = self._sse.split(b"\n\n")
            now = time.monotonic()
            for block in blocks:
                self._event(block, now)

    def _event(self, block: bytes, now: float) -> None:
        kind = event_id = data = None
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                data = line[6:]
            elif line.startswith(b"event: "):
                kind = line[7:].decode()
            elif line.startswith(b"id: "):
                event_id = line[4:].decode()
            elif line.startswith(b"retry:"):
                if self.connected_at is None:
                    self.connected_at = now
                    self.fleet.connected(self)
            elif line.startswith(b": heartbeat"):
                self.heartbeats += 1
        if kind is None or data is None:
            return
        self.last_id = event_id
        shard = json.loads(data)["id"]
        self.fleet.event(self, kind, shard, now)


class _FleetState:
    """The child's streams and what they received; every method runs on its event loop."""

    def __init__(self, port: int):
        self.port = port
        self.conns: dict[int, SseProtocol] = {}
        self.events: list[tuple[int, str, int, float]] = []  # key, kind, shard id, time
        self.counts: dict[int, dict[str, int]] = defaultdict(lambda: {"item": 0, "delete": 0})
        self.failures: list[tuple[int, str]] = []

    def request(self, token: str, limit: int, last_id: str | None) -> bytes:
        lines = [
            f"GET {PATH}?limit={limit} HTTP/1.1",
            "Host: 127.0.0.1",
            f"Authorization: Bearer {token}",
            "Accept: text/event-stream",
        ]
        if last_id:
            lines.append(f"Last-Event-ID: {last_id}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def connected(self, conn: SseProtocol) -> None:
        pass

    def closed(self, conn: SseProtocol) -> None:
        pass

    def failed(self, conn: SseProtocol) -> None:
        self.failures.append((conn.key, f"status {conn.status}"))

    def event(self, conn: SseProtocol, kind: str, shard: int, now: float) -> None:
        self.events.append((conn.key, kind, shard, now))
        self.counts[conn.key][kind] += 1

    # -- commands ------------------------------------------------------------------------

    async def open(self, specs: list[tuple[int, str, str | None]], limit: int, batch: int) -> dict:
        """Open a stream per (key, token, last event id), ``batch`` connects at a time (0:
        all at once); return when every one is open (or failed), with the timings."""
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        self.counts.clear()
        errors: list[str] = []

        async def one(key: int, token: str, last_id: str | None) -> None:
            conn = SseProtocol(self, key, self.request(token, limit, last_id))
            conn.last_id = last_id  # until an event says otherwise
            self.conns[key] = conn
            for attempt in range(5):
                try:
                    await loop.create_connection(lambda c=conn: c, "127.0.0.1", self.port)
                    return
                except OSError as exc:
                    if attempt == 4:
                        errors.append(f"{key}: {exc!r}")
                        self.failures.append((key, repr(exc)))
                    await asyncio.sleep(0.2)

        step = batch or len(specs) or 1
        for i in range(0, len(specs), step):
            await asyncio.gather(*(one(*s) for s in specs[i : i + step]))
        keys = [s[0] for s in specs]
        connected = await self._until(
            lambda: all(self.conns[k].connected_at or self.conns[k].closed for k in keys), 180
        )
        ats = [self.conns[k].connected_at for k in keys if self.conns[k].connected_at]
        return {
            "n": len(keys),
            "open": len(ats),
            "errors": errors[:5],
            "failures": len(self.failures),
            "all_open_s": (max(ats) - start) if connected and ats else None,
            "start": start,
        }

    async def wait_items(self, expected: dict[int, int], timeout: float) -> float | None:
        """Wait until each key has had at least its count of item events since its open;
        return the monotonic time it happened, None on timeout."""
        ok = await self._until(
            lambda: all(self.counts[k]["item"] >= n for k, n in expected.items()), timeout
        )
        return time.monotonic() if ok else None

    async def _until(self, check: Any, timeout: float) -> bool:
        """Poll ``check`` every 20 ms (the figures come from the events' own times)."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def close_all(self) -> dict:
        """Close every stream at once; return how long until all were gone."""
        start = time.monotonic()
        for conn in self.conns.values():
            if conn.transport is not None and not conn.closed:
                conn.transport.close()
        await self._until(lambda: all(c.closed for c in self.conns.values()), 30)
        return {"closed_s": time.monotonic() - start}

    def take(self) -> dict:
        events, self.events = self.events, []
        return {
            "events": events,
            "last_ids": {k: c.last_id for k, c in self.conns.items()},
            "counts": {k: dict(v) for k, v in self.counts.items()},
            "heartbeats": sum(c.heartbeats for c in self.conns.values()),
            "open": sum(1 for c in self.conns.values() if c.connected_at and not c.closed),
            "failures": list(self.failures),
            "cpu_s": time.process_time(),
        }

    def forget(self) -> None:
        self.conns.clear()
        self.counts.clear()
        self.failures.clear()
        self.events = []


def _fleet_main(conn: Connection, port: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_serve(conn, port))


async def _serve(conn: Connection, port: int) -> None:
    loop = asyncio.get_running_loop()
    state = _FleetState(port)
    inbox: asyncio.Queue = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: inbox.put_nowait(conn.recv()))
    while True:
        name, args = await inbox.get()
        if name == "stop":
            await state.close_all()
            conn.send(None)
            return
        try:
            if name == "take":
                result: Any = state.take()
            elif name == "forget":
                result = state.forget()
            else:
                result = await getattr(state, name)(*args)
            conn.send(("ok", result))
        except Exception as exc:  # reported to the bench, which raises it
            conn.send(("error", repr(exc)))


class Fleet:
    """The SSE clients' child process, driven by method calls."""

    def __init__(self, port: int):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_fleet_main, args=(child, port), daemon=True)
        self.proc.start()

    def call(self, name: str, *args: Any, timeout: float = 300.0) -> Any:
        self._conn.send((name, args))
        if not self._conn.poll(timeout):
            raise TimeoutError(f"SSE fleet: {name} took over {timeout}s")
        status, result = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"SSE fleet: {name}: {result}")
        return result

    def open(self, specs: list[tuple[int, str, str | None]], limit: int, batch: int = 0) -> dict:
        return self.call("open", specs, limit, batch)

    def wait_items(self, expected: dict[int, int], timeout: float) -> float | None:
        return self.call("wait_items", expected, timeout, timeout=timeout + 30)

    def close_all(self) -> dict:
        return self.call("close_all")

    def take(self) -> dict:
        return self.call("take")

    def forget(self) -> None:
        self.call("forget")

    def stop(self) -> None:
        if self.proc.is_alive():
            try:
                self._conn.send(("stop", ()))
                self._conn.poll(40)
            except OSError:
                pass
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(5)


def _notices_main(conn: Connection, redis_url: str, channel: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    conn.send("subscribed")
    seen: list[tuple[int, float]] = []  # author id, when its notice arrived
    while not conn.poll():
        message = pubsub.get_message(timeout=0.05)
        if message is None:
            continue
        now = time.monotonic()
        for line in message["data"].split(b"\n"):
            parts = line.split()
            if parts[:1] == [b"shard"] and len(parts) == 4:  # "shard A S MS": A posted S
                seen.append((int(parts[1]), now))
    conn.recv()
    conn.send(seen)
    pubsub.close()


class Notices:
    """Note when each ``shard A S MS`` notice arrives on the notice channel, in a child process."""

    def __init__(self, redis_url: str, channel: str):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_notices_main, args=(child, redis_url, channel), daemon=True)
        self.proc.start()
        if not self._conn.poll(30):
            raise RuntimeError("notice listener did not subscribe in 30 s")
        self._conn.recv()

    def stop(self) -> list[tuple[int, float]]:
        """Stop listening; return (author id, arrival) of every author notice, in order."""
        seen: list[tuple[int, float]] = []
        if self.proc.is_alive():
            self._conn.send("stop")
            if self._conn.poll(30):
                seen = self._conn.recv()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
        return seen
