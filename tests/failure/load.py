"""A steady, bounded write load through the real HTTP API, and what it got back.

Every request is logged with its outcome, so after a fault the suite can say exactly
which writes were acknowledged (2xx: must never be lost) and which failed (must have
left nothing half-written). Loopback only; bounded in count and time.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

PASSWORD = "failure-load-password"  # sign-up needs 12..128 characters


@dataclass
class Outcome:
    op: str
    target: Any
    status: int  # 0 = no answer (connection refused, timeout)


@dataclass
class Load:
    """Users acting at random on each other's shards, from ``threads`` threads."""

    base_url: str
    users: list[tuple[int, str]] = field(default_factory=list)  # (id, token)
    shards: dict[int, int] = field(default_factory=dict)  # shard id -> author id
    outcomes: list[Outcome] = field(default_factory=list)
    rate_per_s: float = 25.0
    threads: int = 2
    max_ops: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[tuple[str, Any]] = set()  # edges and likes with a request in flight
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._rng = random.Random(self.seed or secrets.randbits(32))

    # -- HTTP ------------------------------------------------------------------------

    def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except OSError:
            return 0, None

    def signup(self, n: int) -> None:
        """Create ``n`` users (retried: the API must be up before the load starts)."""
        for _ in range(n):
            for _attempt in range(50):
                handle = f"f_{secrets.token_hex(6)}"
                status, body = self.call(
                    "POST", "/v1/users", body={"handle": handle, "password": PASSWORD}
                )
                if status == 201:
                    self.users.append((body["id"], body["token"]))
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("could not sign up a load user")

    @property
    def user_ids(self) -> list[int]:
        return [u for u, _ in self.users]

    # -- the load --------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._workers = [
            threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            for i in range(self.threads)
        ]
        for w in self._workers:
            w.start()

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=30)

    def _run(self) -> None:
        interval = self.threads / self.rate_per_s
        while not self._stop.is_set() and len(self.outcomes) < self.max_ops:
            started = time.monotonic()
            self.step()
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def step(self) -> Outcome | None:
        """Do one random write and log its outcome (None: its edge or like was busy)."""
        with self._lock:
            me, token = self._rng.choice(self.users)
            other = self._rng.choice([u for u, _ in self.users if u != me])
            shard = self._rng.choice(list(self.shards)) if self.shards else None
            mine = [s for s, a in self.shards.items() if a == me]
            roll = self._rng.random()
            read = self._rng.random() < 0.2
        if read:  # fills the read path's cache, which verify then checks too
            op, target = "read", me
            path = self._rng.choice(
                ["/v1/feed", f"/v1/users/{other}", f"/v1/users/{me}/shards",
                 f"/v1/users/{other}/followers", f"/v1/users/{me}/following",
                 *([f"/v1/shards/{shard}", f"/v1/shards/{shard}/comments"] if shard else [])]
            )  # fmt: skip
            status, _ = self.call("GET", path, token)
        elif roll < 0.30 or shard is None:
            op, target = "post", me
            status, body = self.call("POST", "/v1/shards", token, {"body": secrets.token_hex(8)})
            if status == 201:
                with self._lock:
                    self.shards[body["id"]] = me
                target = body["id"]
        elif roll < 0.45:
            op, target = "follow", (me, other)
            status = self._alone(("edge", target), "PUT", f"/v1/following/{other}", token)
        elif roll < 0.53:
            op, target = "unfollow", (me, other)
            status = self._alone(("edge", target), "DELETE", f"/v1/following/{other}", token)
        elif roll < 0.70:
            op, target = "comment", shard
            status, _ = self.call("POST", f"/v1/shards/{shard}/comments", token, {"body": "c"})
        elif roll < 0.85:
            op, target = "like", (shard, me)
            status = self._alone(("like", target), "PUT", f"/v1/shards/{shard}/like", token)
        elif roll < 0.92:
            op, target = "unlike", (shard, me)
            status = self._alone(("like", target), "DELETE", f"/v1/shards/{shard}/like", token)
        elif mine:
            op, target = "delete", mine[0]
            status, _ = self.call("DELETE", f"/v1/shards/{mine[0]}", token)
            if status in (204, 404):
                with self._lock:
                    self.shards.pop(mine[0], None)
        else:
            op, target = "post", me
            status, body = self.call("POST", "/v1/shards", token, {"body": "p"})
            if status == 201:
                with self._lock:
                    self.shards[body["id"]] = me
                target = body["id"]
        if status is None:
            return None
        outcome = Outcome(op, target, status)
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def _alone(self, key: tuple[str, Any], method: str, path: str, token: str) -> int | None:
        """Send a follow/unfollow or like/unlike unless another thread's request about the
        same edge or like is in flight (then None: nothing sent).

        Two overlapping requests about one edge may commit in either order whatever order
        their answers arrive in (seen: an unfollow that waited on the concurrent follow's
        row locks deleted nothing, 204, and answered 19 ms after the follow's 204), so the
        last answer would not say what PostgreSQL must hold. One at a time per key, the
        answers come in commit order and ``checks.lost_acknowledged_writes`` can trust them.
        """
        with self._lock:
            if key in self._busy:
                return None
            self._busy.add(key)
        try:
            return self.call(method, path, token)[0]
        finally:
            with self._lock:
                self._busy.discard(key)

    def tally(self) -> dict[str, int]:
        """Count the writes and how many were acknowledged; the reads and how many failed
        (no answer or 5xx; the single-node suite does not judge them, the cluster's does)."""
        writes = [o for o in self.outcomes if o.op != "read"]
        reads = [o for o in self.outcomes if o.op == "read"]
        ok = sum(1 for o in writes if 200 <= o.status < 300)
        failed = sum(1 for o in writes if o.status == 0 or o.status >= 500)
        read_failed = sum(1 for o in reads if o.status == 0 or o.status >= 500)
        return {"requests": len(writes), "ok": ok, "failed": failed, "reads": len(reads),
                "read_failed": read_failed}  # fmt: skip
