"""One-use stream tickets: a browser's way to open an authenticated stream.

``EventSource`` cannot send an ``Authorization`` header, and a bearer token in a URL ends
up in logs and histories. So an authenticated client first asks the API for a ticket
(``POST /v1/stream-tickets``) and opens ``/v1/feed/stream?ticket=...``: the ticket names
the user, is valid for ``TTL_S`` seconds and is deleted by the first stream that redeems it
(``GETDEL``), so a logged URL is worthless. Only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets

from feedline.cache_keys import PREFIX

TTL_S = 60


def new() -> str:
    """Return a fresh ticket (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def key(ticket: str) -> str:
    """Return the Redis key of a ticket: its hash, never the ticket itself."""
    return f"{PREFIX}ticket:{hashlib.sha256(ticket.encode()).hexdigest()}"


def value(user_id: int, token_digest: bytes) -> str:
    """Return what a ticket stores: its user, and the hash of the token that asked for it
    (a stream opened with the ticket ends when that token is revoked)."""
    return f"{user_id}:{token_digest.hex()}"


def user_of(stored: bytes | None) -> tuple[int, str] | None:
    """Return (user, token hash hex) of a redeemed ticket (None: unknown, expired or used)."""
    if stored is None:
        return None
    user, _, digest = stored.decode(errors="replace").partition(":")
    try:
        return int(user), digest
    except ValueError:
        return None
