"""Encode pagination positions as opaque, signed cursors.

A cursor is base64url(position + tag): the position is the clustering key of the last item
served, packed as signed 64-bit integers (e.g. created_at in ms and an id), and the tag is a
truncated HMAC-SHA256 over the list's scope (e.g. ``feed:42``) and the position. So a client
cannot forge a position, and a cursor of one list is refused by another (both 400), while
the server stores nothing per cursor (a bad one raises ``BadCursor``, which the web answers
with a 400). Positions are keys, never offsets: a page after a
cursor is a clustering range query, stable while new items arrive at the head.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from feedline.errors import BadCursor

TAG_BYTES = 12
_INT = struct.Struct(">q")


class CursorCodec:
    """Sign cursors with the current secret; accept the current or the previous one.

    Rotation: deploy the new secret with the old one as ``previous``; cursors already in
    clients' hands keep working until they have been replaced (one page each), then drop
    ``previous``.
    """

    def __init__(self, secret: str, previous: str = ""):
        self._key = secret.encode()
        self._keys = [self._key] + ([previous.encode()] if previous else [])

    def _tag(self, scope: str, packed: bytes, key: bytes | None = None) -> bytes:
        msg = scope.encode() + b"\0" + packed
        return hmac.new(key or self._key, msg, hashlib.sha256).digest()[:TAG_BYTES]

    def encode(self, scope: str, position: tuple[int, ...]) -> str:
        """Return the cursor for ``position`` in the list named ``scope``."""
        packed = b"".join(_INT.pack(v) for v in position)
        raw = packed + self._tag(scope, packed)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, scope: str, cursor: str, size: int) -> tuple[int, ...]:
        """Return the ``size``-int position of ``cursor``; BadCursor if it is not ours."""
        try:
            text = cursor.encode("ascii")
            raw = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise BadCursor("not base64url") from None
        if len(raw) != size * _INT.size + TAG_BYTES:
            raise BadCursor("wrong length")
        packed, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        if not any(hmac.compare_digest(tag, self._tag(scope, packed, k)) for k in self._keys):
            raise BadCursor("not signed for this list")
        return tuple(v for (v,) in _INT.iter_unpack(packed))
