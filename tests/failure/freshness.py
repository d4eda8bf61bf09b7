"""Freshness as a user sees it, while a fault lasts: API 201 -> in a follower's feed.

AUTHORS authors post in turn, one post every ``every_s`` through the API (each author stays
under the API's post rate limit); one follower of them all polls ``GET /v1/feed``
(the whole read path: near cache, Redis, Cassandra at the configured consistency) until
each post shows up. Every poll is also a feed read whose failures count (no answer or
5xx). Loopback only; bounded by the run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from bench.stats import percentile
from tests.failure.load import Load

POLL_S = 0.05
AUTHORS = 3
TIMEOUT_S = 30.0


@dataclass
class Post:
    shard: int
    ok_at: float
    seen_at: float | None = None

    @property
    def fresh_s(self) -> float | None:
        return None if self.seen_at is None else self.seen_at - self.ok_at


class FreshnessProbe(threading.Thread):
    def __init__(self, base_url: str, every_s: float = 0.2):
        super().__init__(name="freshness-probe", daemon=True)
        self.api = Load(base_url)
        self.every_s = every_s
        self.posts: list[Post] = []
        self.reads = 0
        self.read_failures = 0
        self.post_failures = 0
        self._halt = threading.Event()

    def prepare(self, timeout: float = 60.0) -> None:
        """Sign up the author and the follower, follow, and wait until a first post is
        visible (the follow applied): what is measured after that is freshness alone."""
        self.api.signup(AUTHORS + 1)
        *authors, (_, self.reader) = self.api.users
        self.authors = [token for _, token in authors]
        for author_id, _ in authors:
            status, _ = self.api.call("PUT", f"/v1/following/{author_id}", self.reader)
            assert status in (200, 204), f"probe follow answered {status}"
        deadline = time.monotonic() + timeout
        firsts: list[Post] = []
        while len(firsts) < AUTHORS or not self._poll(firsts):
            assert time.monotonic() < deadline, "the probe's first posts never reached the feed"
            if len(firsts) < AUTHORS and (post := self._post()) is not None:
                firsts.append(post)
            time.sleep(0.2)
        self.posts.clear()
        self.reads = self.read_failures = self.post_failures = 0

    def run(self) -> None:
        next_post = time.monotonic()
        while not self._halt.is_set():
            now = time.monotonic()
            if now >= next_post:
                self._post()
                next_post = now + self.every_s
            pending = [p for p in self.posts if p.seen_at is None and now - p.ok_at < TIMEOUT_S]
            if pending:
                self._poll(pending)
            self._halt.wait(POLL_S)

    def stop(self) -> None:
        """Stop posting; wait (bounded) for the posts still on their way."""
        self._halt.set()
        self.join(timeout=10)
        deadline = time.monotonic() + TIMEOUT_S
        while (pending := [p for p in self.posts if p.seen_at is None]) and (
            time.monotonic() < deadline
        ):
            self._poll(pending)
            time.sleep(POLL_S)

    def _post(self) -> Post | None:
        author = self.authors[len(self.posts) % len(self.authors)]
        status, body = self.api.call("POST", "/v1/shards", author, {"body": "probe"})
        if status != 201:
            self.post_failures += 1
            return None
        post = Post(body["id"], time.monotonic())
        self.posts.append(post)
        return post

    def _poll(self, pending: list[Post]) -> bool:
        """Read the follower's feed once; mark the pending posts it shows. True if all."""
        status, body = self.api.call("GET", "/v1/feed?limit=100", self.reader)
        self.reads += 1
        if status != 200:
            self.read_failures += 1
            return False
        now = time.monotonic()
        shown = {item["id"] for item in body["items"]}
        for p in pending:
            if p.seen_at is None and p.shard in shown:
                p.seen_at = now
        return all(p.seen_at is not None for p in pending)

    def summary(self, window: tuple[float, float] | None = None) -> dict[str, float | int | None]:
        """Freshness of the posts (those acknowledged within ``window``, if given)."""
        posts = [p for p in self.posts if window is None or window[0] <= p.ok_at <= window[1]]
        fresh = [p.fresh_s if p.fresh_s is not None else TIMEOUT_S for p in posts]
        return {
            "posts": len(posts),
            "not_seen": sum(p.seen_at is None for p in posts),
            "p50": percentile(fresh, 50),
            "p99": percentile(fresh, 99),
            "max": max(fresh, default=None),
        }
