"""Feed-change notices: what the pipeline publishes once an event is applied, for live streams.

A notice says *whose* feed may have changed, never what the feed now holds: a listener
(``feedline.stream``) re-reads the read model, so a notice that is late, repeated or out of
order changes nothing but when the re-read happens. Two kinds cover every way an item
enters or leaves a home feed:

- ``author A`` -- A's shards changed (one deleted): every reader following A, and A (whose
  own feed holds their shards), may see a different feed;
- ``shard A S MS`` -- A created shard S at MS (epoch ms): the same readers, and enough for a
  stream to put S on top of a view without re-reading the feed (``feedline.stream``);
- ``edge F A`` -- F followed or unfollowed A: F's feed may have gained or lost A's shards;
- ``resync`` -- notices were dropped (more piled up while Redis was away than the
  invalidator keeps): every listener re-reads everything.

One notice per event, whatever the author's audience: publishing is O(1) per event
(docs/events.md, "Live streams"), and the readers are found by the listener, which knows
whom its connected clients follow. Notices are published by the cache invalidator after
the event's Cassandra writes and its cache deletions, so a re-read after a notice sees the
change. The wire format is one line per notice, several per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from feedline.cache_keys import PREFIX
from feedline.errors import BadNotice

CHANNEL = f"{PREFIX}notices"  # one Redis pub/sub channel for every notice


@dataclass(frozen=True)
class AuthorNotice:
    """The shards of ``author_id`` changed: their followers' feeds and their own."""

    author_id: int

    def line(self) -> str:
        return f"author {self.author_id}"


@dataclass(frozen=True)
class ShardNotice:
    """``author_id`` created ``shard_id`` at ``created_ms`` (its feed position's time)."""

    author_id: int
    shard_id: int
    created_ms: int

    @classmethod
    def of(cls, author_id: int, shard_id: int, created_at: datetime) -> ShardNotice:
        """Build from the change event's aware created_at (ms, as the read model keeps it)."""
        return cls(author_id, shard_id, (created_at - EPOCH) // MS)

    def line(self) -> str:
        return f"shard {self.author_id} {self.shard_id} {self.created_ms}"


EPOCH, MS = datetime(1970, 1, 1, tzinfo=UTC), timedelta(milliseconds=1)


@dataclass(frozen=True)
class EdgeNotice:
    """``follower_id`` followed or unfollowed ``followee_id``."""

    follower_id: int
    followee_id: int

    def line(self) -> str:
        return f"edge {self.follower_id} {self.followee_id}"


@dataclass(frozen=True)
class Resync:
    """Some notices were dropped: every stream re-reads whom it follows and its feed."""

    def line(self) -> str:
        return "resync"


Notice = AuthorNotice | ShardNotice | EdgeNotice | Resync
MAX_LINES = 1_000  # notices per message: a backlog goes out in several


def messages(notices: list[Notice] | tuple[Notice, ...]) -> list[bytes]:
    """Return the messages that carry ``notices``, at most MAX_LINES each."""
    unique = list(dict.fromkeys(notices))
    return [encode(unique[i : i + MAX_LINES]) for i in range(0, len(unique), MAX_LINES)]


def encode(notices: list[Notice] | tuple[Notice, ...]) -> bytes:
    """Return one pub/sub message carrying ``notices`` (one line each, duplicates dropped)."""
    return "\n".join(dict.fromkeys(n.line() for n in notices)).encode()


def decode(message: bytes | str) -> list[Notice]:
    """Return the notices of one message; BadNotice if any line is not one."""
    try:
        text = message.decode() if isinstance(message, bytes) else message
    except UnicodeDecodeError as exc:
        raise BadNotice("not UTF-8") from exc
    out: list[Notice] = []
    for line in text.splitlines():
        parts = line.split()
        try:
            if parts[0] == "author" and len(parts) == 2:
                out.append(AuthorNotice(int(parts[1])))
                continue
            if parts[0] == "shard" and len(parts) == 4:
                out.append(ShardNotice(int(parts[1]), int(parts[2]), int(parts[3])))
                continue
            if parts[0] == "edge" and len(parts) == 3:
                out.append(EdgeNotice(int(parts[1]), int(parts[2])))
                continue
            if parts == ["resync"]:
                out.append(Resync())
                continue
        except (IndexError, ValueError):
            pass
        raise BadNotice(f"not a notice: {line[:80]!r}")
    return out
