"""Build Debezium messages and decoded events for the strategy tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from feedline.strategies.base import ChangeEvent
from feedline.strategies.decode import KEYS

TOPIC = "feedline.public.{}"
T0 = datetime(2026, 11, 26, 14, 5, 28, 123000, tzinfo=UTC)
T0_ISO = "2026-11-26T14:05:28.123456Z"


def row(table: str, **overrides: Any) -> dict[str, Any]:
    """Return a raw (as Debezium sends it) row of ``table`` with sensible defaults."""
    defaults: dict[str, dict[str, Any]] = {
        "users": {
            "id": 1,
            "handle": "ada",
            "follower_count": 2,
            "following_count": 3,
            "shard_count": 4,
            "created_at": T0_ISO,
        },
        "followers": {"follower_id": 2, "followee_id": 1, "created_at": T0_ISO},
        "shards": {
            "id": 10,
            "author_id": 1,
            "body": "hello",
            "like_count": 0,
            "comment_count": 0,
            "created_at": T0_ISO,
        },
        "comments": {"id": 100, "shard_id": 10, "author_id": 2, "body": "hi", "created_at": T0_ISO},
        "likes": {"shard_id": 10, "user_id": 2, "created_at": T0_ISO},
    }
    return {**defaults[table], **overrides}


def message(
    table: str,
    op: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    lsn: int = 23_456_789,
) -> tuple[str, bytes, bytes]:
    """Return ``(topic, key, value)`` of a Debezium change message (schemas off)."""
    image = after if after is not None else before
    assert image is not None
    key = {k: image[k] for k in KEYS[table]}
    value = {
        "before": before,
        "after": after,
        "source": {
            "version": "3.6.3.Final",
            "connector": "postgresql",
            "name": "feedline",
            "ts_ms": 1_795_701_928_123,
            "snapshot": "true" if op == "r" else "false",
            "db": "feedline",
            "sequence": f'["{lsn - 8}","{lsn}"]',
            "schema": "public",
            "table": table,
            "txId": 771,
            "lsn": lsn,
            "xmin": None,
        },
        "op": op,
        "ts_ms": 1_795_701_928_130,
    }
    return TOPIC.format(table), json.dumps(key).encode(), json.dumps(value).encode()


def tombstone(table: str, **key: Any) -> tuple[str, bytes, None]:
    return TOPIC.format(table), json.dumps(key).encode(), None


def event(
    table: str,
    op: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    lsn: int = 1000,
) -> ChangeEvent:
    """Return a decoded event; rows use already-typed values (datetimes, ints)."""
    image = after if after is not None else before
    assert image is not None
    key = {k: image[k] for k in KEYS[table]}
    return ChangeEvent(table, op, key, before, after, lsn=lsn, ts_ms=0)


def typed(table: str, **overrides: Any) -> dict[str, Any]:
    """Return a decoded row of ``table``: ``row`` with created_at as an aware datetime."""
    return {**row(table), "created_at": T0, **overrides}
