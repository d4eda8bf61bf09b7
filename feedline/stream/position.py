"""Stream positions: what a client's live view of its feed holds, as an opaque event id.

A stream keeps a client's copy of the newest ``limit`` items of its home feed equal to what
``GET /v1/feed?limit=<limit>`` shows: an ``item`` event adds one (the client keeps its newest
``limit``, so an item pushed below them drops off its end), a ``delete`` event removes one
that left the feed. Each event's id is the view *after* that event, encoded: the positions
(created_at ms, shard id) it holds, newest first, and ``limit``. Resuming from an id is
therefore a diff of that view against the feed as it is now (:func:`diff`), by whichever
stream process the client reaches, with nothing stored server-side: no gap (everything in
the feed now and not in the view is sent) and no duplicate (nothing in the view is sent
again). A client that forges an id only gets the diff against its forgery.

Encoding: version byte, limit, count, then per position the created_at distance from the
previous one (the first: absolute) and the shard id, as unsigned LEB128 varints,
base64url without padding. ~12 bytes a position: 20 positions ~ 330 characters.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from feedline.errors import BadCursor

VERSION = 1
Position = tuple[int, int]  # (created_at ms, shard id): a feed's clustering order
EMPTY: tuple[Position, ...] = ()


@dataclass(frozen=True)
class Change:
    """One event of a diff: ``kind`` is "item" or "delete"; ``view`` is the view after it."""

    kind: str
    position: Position
    view: tuple[Position, ...]


def encode(view: tuple[Position, ...], limit: int) -> str:
    """Return the event id of ``view`` (newest first) for a stream of ``limit`` items."""
    out = bytearray((VERSION,))
    _varint(out, limit)
    _varint(out, len(view))
    previous = None
    for created_ms, shard_id in view:
        _varint(out, created_ms if previous is None else previous - created_ms)
        _varint(out, shard_id)
        previous = created_ms
    return base64.urlsafe_b64encode(bytes(out)).rstrip(b"=").decode()


def decode(text: str, max_limit: int) -> tuple[tuple[Position, ...], int]:
    """Return ``(view, limit)`` of an event id; BadCursor if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadCursor("not a stream position") from exc
    if not raw or raw[0] != VERSION:
        raise BadCursor("not a stream position")
    at = 1
    limit, at = _read(raw, at)
    count, at = _read(raw, at)
    if not 1 <= limit <= max_limit or count > limit:
        raise BadCursor("not a stream position")
    view = []
    previous = None
    for _ in range(count):
        value, at = _read(raw, at)
        created_ms = value if previous is None else previous - value
        shard_id, at = _read(raw, at)
        if created_ms < 0 or (view and (created_ms, shard_id) >= view[-1]):
            raise BadCursor("not a stream position")  # newest first, each position once
        view.append((created_ms, shard_id))
        previous = created_ms
    if at != len(raw):
        raise BadCursor("not a stream position")
    return tuple(view), limit


def diff(
    view: tuple[Position, ...],
    feed: tuple[Position, ...],
    floor: Position | None,
    limit: int,
) -> tuple[list[Change], tuple[Position, ...]]:
    """Return the events that bring a client's ``view`` up to ``feed``, and the view after.

    ``feed`` is what a reader sees now at the head of the feed, newest first (at most
    ``limit`` items); ``floor`` is the position of the last row that read covered when the
    feed holds more rows below it (None: the read saw the whole feed). A position in the
    view and not in the feed left the feed if it sorts above ``floor`` (the read would have
    seen it): a ``delete``. Below it, it only dropped off the view's end, which the client
    does itself. Deletes come first, then new items oldest first; each event carries the
    view after it, the client's newest ``limit``.
    """
    present = set(feed)
    held = set(view)
    changes: list[Change] = []
    current = list(view)
    for position in view:
        if position not in present and (floor is None or position >= floor):
            current.remove(position)
            changes.append(Change("delete", position, tuple(current)))
    for position in reversed(feed):
        if position not in held:
            current.append(position)
            current.sort(reverse=True)
            del current[limit:]
            changes.append(Change("item", position, tuple(current)))
    return changes, tuple(current)


def _varint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("stream positions are non-negative")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _read(raw: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(raw) or shift > 63:
            raise BadCursor("not a stream position")
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
