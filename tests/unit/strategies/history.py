"""Generate valid source histories: a tiny simulated PostgreSQL emitting Debezium events.

Each action changes the simulated tables the way the API's transactions would (counts kept
on the rows, cascades on shard delete) and emits the decoded change events with strictly
increasing LSNs, a tombstone after every delete, like Debezium does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import strategies as hs

from feedline.strategies.base import ChangeEvent
from feedline.strategies.decode import KEYS
from tests.unit.strategies.events import T0

USERS = (1, 2, 3, 4)


@dataclass
class Source:
    """The simulated source tables and the change events emitted so far."""

    lsn: int = 100
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    follows: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    shards: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    likes: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    events: list[ChangeEvent] = field(default_factory=list)
    next_id: int = 10

    def emit(self, table: str, op: str, before=None, after=None) -> None:
        self.lsn += 8
        image = after if after is not None else before
        key = {k: image[k] for k in KEYS[table]}
        self.events.append(ChangeEvent(table, op, key, before, after, self.lsn, self.lsn))
        if op == "d":
            self.events.append(ChangeEvent(table, "t", key, None, None, 0, 0))

    def now(self):
        return T0 + timedelta(milliseconds=self.lsn)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def bump_user(self, uid: int, column: str, delta: int) -> None:
        old = self.users[uid]
        new = {**old, column: old[column] + delta}
        self.users[uid] = new
        self.emit("users", "u", old, new)


def create_users(src: Source) -> None:
    for uid in USERS:
        row = {
            "id": uid,
            "handle": f"u{uid}",
            "follower_count": 0,
            "following_count": 0,
            "shard_count": 0,
            "created_at": src.now(),
        }
        src.users[uid] = row
        src.emit("users", "c", after=row)


def toggle_follow(src: Source, a: int, b: int) -> None:
    if a == b:
        return
    if (a, b) in src.follows:
        src.emit("followers", "d", before=src.follows.pop((a, b)))
        delta = -1
    else:
        row = {"follower_id": a, "followee_id": b, "created_at": src.now()}
        src.follows[(a, b)] = row
        src.emit("followers", "c", after=row)
        delta = 1
    src.bump_user(a, "following_count", delta)
    src.bump_user(b, "follower_count", delta)


def move_follow(src: Source, a: int, b: int) -> None:
    """Update a follow's created_at to now (the API never does; SQL by hand can).

    The edge's window moves with it: the pipeline plans the update like a follow.
    """
    if (a, b) not in src.follows:
        return
    old = src.follows[(a, b)]
    new = {**old, "created_at": src.now()}
    src.follows[(a, b)] = new
    src.emit("followers", "u", old, new)


def post(src: Source, author: int) -> None:
    sid = src.new_id()
    row = {
        "id": sid,
        "author_id": author,
        "body": f"shard {sid}",
        "like_count": 0,
        "comment_count": 0,
        "created_at": src.now(),
    }
    src.shards[sid] = row
    src.emit("shards", "c", after=row)
    src.bump_user(author, "shard_count", 1)


def _shard(src: Source, pick: int) -> int | None:
    ids = sorted(src.shards)
    return ids[pick % len(ids)] if ids else None


def edit_shard(src: Source, pick: int, column: str, delta: int = 0) -> None:
    sid = _shard(src, pick)
    if sid is None:
        return
    old = src.shards[sid]
    new = (
        {**old, "body": old["body"] + "!"}
        if column == "body"
        else {**old, column: old[column] + delta}
    )
    src.shards[sid] = new
    src.emit("shards", "u", old, new)


def delete_shard(src: Source, pick: int) -> None:
    sid = _shard(src, pick)
    if sid is None:
        return
    row = src.shards.pop(sid)
    src.emit("shards", "d", before=row)
    for cid in [c for c, r in src.comments.items() if r["shard_id"] == sid]:
        src.emit("comments", "d", before=src.comments.pop(cid))
    for key in [k for k in src.likes if k[0] == sid]:
        src.emit("likes", "d", before=src.likes.pop(key))
    src.bump_user(row["author_id"], "shard_count", -1)


def toggle_comment(src: Source, pick: int, author: int) -> None:
    sid = _shard(src, pick)
    if sid is None:
        return
    mine = [c for c, r in src.comments.items() if r["shard_id"] == sid and r["author_id"] == author]
    if mine:
        src.emit("comments", "d", before=src.comments.pop(mine[0]))
        edit_shard(src, sorted(src.shards).index(sid), "comment_count", -1)
    else:
        cid = src.new_id()
        row = {
            "id": cid,
            "shard_id": sid,
            "author_id": author,
            "body": "hey",
            "created_at": src.now(),
        }
        src.comments[cid] = row
        src.emit("comments", "c", after=row)
        edit_shard(src, sorted(src.shards).index(sid), "comment_count", 1)


def toggle_like(src: Source, pick: int, user: int) -> None:
    sid = _shard(src, pick)
    if sid is None:
        return
    if (sid, user) in src.likes:
        src.emit("likes", "d", before=src.likes.pop((sid, user)))
        edit_shard(src, sorted(src.shards).index(sid), "like_count", -1)
    else:
        row = {"shard_id": sid, "user_id": user, "created_at": src.now()}
        src.likes[(sid, user)] = row
        src.emit("likes", "c", after=row)
        edit_shard(src, sorted(src.shards).index(sid), "like_count", 1)


user = hs.sampled_from(USERS)
pick = hs.integers(0, 50)
actions = hs.one_of(
    hs.tuples(hs.just(toggle_follow), user, user),
    hs.tuples(hs.just(toggle_follow), user, user),
    hs.tuples(hs.just(move_follow), user, user),
    hs.tuples(hs.just(post), user),
    hs.tuples(hs.just(post), user),
    hs.tuples(hs.just(edit_shard), pick, hs.just("body")),
    hs.tuples(hs.just(delete_shard), pick),
    hs.tuples(hs.just(toggle_comment), pick, user),
    hs.tuples(hs.just(toggle_like), pick, user),
)


@hs.composite
def histories(draw, max_actions: int = 25) -> Source:
    """Draw a valid history; the result holds the final source state and its events."""
    src = Source()
    create_users(src)
    for fn, *args in draw(hs.lists(actions, max_size=max_actions)):
        fn(src, *args)
    return src


def expected_feeds(src: Source, window_ms: int) -> dict[int, set[int]]:
    """Return what each user's feed must hold (docs/events.md, "The expected feed").

    A user's own shards, and for each user they follow, every shard created at or after
    the follow's ``created_at`` minus the backfill window.
    """
    feeds: dict[int, set[int]] = {uid: set() for uid in USERS}
    for sid, row in src.shards.items():
        feeds[row["author_id"]].add(sid)
    for (follower, _followee), shards in expected_index(src, window_ms).items():
        feeds[follower] |= shards
    return feeds


def expected_index(src: Source, window_ms: int) -> dict[tuple[int, int], set[int]]:
    """Return ``(follower, author) -> shards`` that the follow put in the follower's feed."""
    index: dict[tuple[int, int], set[int]] = {}
    for (follower, followee), edge in src.follows.items():
        since = edge["created_at"] - timedelta(milliseconds=window_ms)
        index[(follower, followee)] = {
            sid
            for sid, row in src.shards.items()
            if row["author_id"] == followee and row["created_at"] >= since
        }
    return index
