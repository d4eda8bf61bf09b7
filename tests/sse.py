"""A live-feed client for tests: a real SSE client (httpx + httpx-sse) in a thread, keeping
the view a client keeps (docs: README "Live feeds"), and the stream process to talk to.

``LiveView`` applies events as any client would (its own logic, not the server's): an
``item`` adds the shard (an item it already holds is a duplicate, recorded), a ``delete``
removes it, and only the newest ``limit`` are kept; it remembers the last event id and, on
``resume()``, reconnects with it as ``Last-Event-ID``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from tests.integration.pipeline.conftest import free_port


class StreamProcess:
    """``python -m feedline.stream`` as the Procfile runs it, on a port of its own."""

    def __init__(self, log: Path, **env: str):
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = dict(os.environ, FEEDLINE_STREAM_PORT=str(self.port), **env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> StreamProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "feedline.stream"], env=self._env, stdout=out, stderr=out
            )
        wait(lambda: self.health()["notices_subscribed"], 30, f"stream not up; see {self.log}")
        return self

    def health(self) -> dict[str, Any]:
        assert self.process is not None and self.process.poll() is None, f"exited; {self.log}"
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                return json.load(resp)
        except OSError:
            return {"notices_subscribed": False, "streams": -1}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def wait(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except AssertionError as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what} (last: {last})")


class LiveView:
    """One client's live copy of the head of its feed, fed by a stream in a thread."""

    def __init__(self, url: str, headers: dict[str, str], limit: int = 20, query: str = ""):
        self.url = url
        self.headers = headers
        self.limit = limit
        self.query = query
        self.items: dict[int, dict[str, Any]] = {}
        self.events: list[tuple[str, Any]] = []
        self.duplicates: list[int] = []
        self.last_id: str | None = None
        self.status: int | None = None
        self.ended = threading.Event()
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> LiveView:
        self.ended.clear()
        headers = dict(self.headers)
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=None))
        params = f"?limit={self.limit}" + (f"&{self.query}" if self.query else "")
        started = threading.Event()

        def run() -> None:
            try:
                with connect_sse(self._client, "GET", self.url + params, headers=headers) as es:
                    self.status = es.response.status_code
                    started.set()
                    if self.status != 200:
                        return
                    for sse in es.iter_sse():
                        if sse.data:  # httpx-sse also yields the data-less ``retry:`` block
                            self._apply(sse.event, sse.data, sse.id)
            except (httpx.HTTPError, RuntimeError):
                pass  # closed by us, or the server went away: ``ended`` says so
            finally:
                started.set()
                self.ended.set()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def _apply(self, kind: str, data: str, event_id: str) -> None:
        doc = json.loads(data)
        with self._lock:
            self.events.append((kind, doc))
            if kind == "item":
                if doc["id"] in self.items:
                    self.duplicates.append(doc["id"])
                self.items[doc["id"]] = doc
                for old in self.ordered()[self.limit :]:
                    del self.items[old]
            elif kind == "delete":
                self.items.pop(doc["id"], None)
            self.last_id = event_id

    def ordered(self) -> list[int]:
        """Shard ids newest first, as the feed orders them (created_at, then id)."""
        return sorted(self.items, key=lambda i: (self.items[i]["created_at"], i), reverse=True)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._thread is not None:
            self._thread.join(10)

    def resume(self) -> LiveView:
        self.close()
        return self.open()

    def kinds(self) -> list[str]:
        with self._lock:
            return [k for k, _ in self.events]
