"""A small HTTP client and an open-loop, rate-limited load generator for 127.0.0.1.

wrk measures peak throughput (closed loop: as fast as the server answers). Latency at a
given rate needs an open loop instead: request i is due at ``start + i / rate`` whatever
happened before, and its latency is counted from when it was due, so a stalled server
shows up as queueing delay (no coordinated omission). wrk2 would do this but is not
packaged; at the rates measured here (tens to hundreds per second) Python threads keep up,
and the report says when they did not (achieved rate below the target).
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    body: Any


class Http:
    """One keep-alive-when-possible connection to 127.0.0.1:port (sync gunicorn closes it)."""

    def __init__(self, port: int, timeout: float = 10.0):
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self._conn.request(method, path, body=data, headers=headers)
            resp = self._conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self._conn.close()
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self._conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return Reply(resp.status, parsed)


@dataclass
class Result:
    due: float  # when the request was scheduled (monotonic)
    done: float  # when its response arrived (monotonic)
    ok: bool
    info: Any  # whatever the op returned (for freshness probes)

    @property
    def latency(self) -> float:
        return self.done - self.due


Op = Callable[[Http, int], tuple[bool, Any]]


def open_loop(port: int, op: Op, rate: float, duration: float, threads: int = 16) -> list[Result]:
    """Call ``op(http, i)`` at ``rate``/s for ``duration`` s; bounded in count and time."""
    total = max(1, int(rate * duration))
    jobs: queue.Queue[tuple[int, float] | None] = queue.Queue()
    results: list[Result] = []
    lock = threading.Lock()
    deadline = time.monotonic() + duration + 30.0

    def worker() -> None:
        client = Http(port)
        while (job := jobs.get()) is not None:
            i, due = job
            if time.monotonic() > deadline:
                continue
            try:
                ok, info = op(client, i)
            except Exception as exc:  # a failed request is a result, not a crash
                ok, info = False, repr(exc)
            with lock:
                results.append(Result(due, time.monotonic(), ok, info))

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        jobs.put((i, due))
    for _ in pool:
        jobs.put(None)
    for t in pool:
        t.join(max(0.0, deadline - time.monotonic()))
    return results


def achieved_rate(results: list[Result]) -> float | None:
    if len(results) < 2:
        return None
    span = max(r.done for r in results) - min(r.due for r in results)
    return len(results) / span if span > 0 else None
