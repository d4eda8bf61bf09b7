"""Decode raw Debezium messages (JSON, schemas off) into typed ``ChangeEvent``s.

All validation happens here, once, so strategies can trust the rows they get: every source
column is present with its type, ``timestamptz`` values are timezone-aware UTC datetimes
truncated to milliseconds (Cassandra's ``timestamp`` resolution: an insert and a later delete
of the same row then compute equal clustering keys), and the LSN is an integer. Anything else
raises ``AdaptError``: a poison event the pipeline dead-letters. See docs/events.md.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from feedline.errors import AdaptError
from feedline.strategies.base import TERMINAL, ChangeEvent

INT, TEXT, TS = "int", "text", "timestamptz"

# Source tables (migrations/postgres/0001_init.sql): primary key, then every column's type.
KEYS: dict[str, tuple[str, ...]] = {
    "users": ("id",),
    "followers": ("follower_id", "followee_id"),
    "shards": ("id",),
    "comments": ("id",),
    "likes": ("shard_id", "user_id"),
}
COLUMNS: dict[str, dict[str, str]] = {
    "users": {
        "id": INT,
        "handle": TEXT,
        "follower_count": INT,
        "following_count": INT,
        "shard_count": INT,
        "created_at": TS,
    },
    "followers": {"follower_id": INT, "followee_id": INT, "created_at": TS},
    "shards": {
        "id": INT,
        "author_id": INT,
        "body": TEXT,
        "like_count": INT,
        "comment_count": INT,
        "created_at": TS,
    },
    "comments": {"id": INT, "shard_id": INT, "author_id": INT, "body": TEXT, "created_at": TS},
    "likes": {"shard_id": INT, "user_id": INT, "created_at": TS},
}

HEARTBEAT_PREFIX = "__debezium-heartbeat"
_ROW_OPS = ("c", "u", "d", "r")
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})"
)


def is_heartbeat(topic: str) -> bool:
    """Tell whether ``topic`` is Debezium's heartbeat topic (no row changes, never planned)."""
    return topic.startswith(HEARTBEAT_PREFIX)


def decode(topic: str, key: bytes | None, value: bytes | None) -> ChangeEvent | None:
    """Decode one Kafka message; ``None`` for a heartbeat, op ``"t"`` for a tombstone.

    Raises ``AdaptError`` for anything malformed, naming the topic and what is wrong.
    """
    if is_heartbeat(topic):
        return None
    table = table_of(topic)
    try:
        keyrow = _key(table, _json(key, "key"))
        if value is None:
            return ChangeEvent(table, "t", keyrow, None, None, lsn=0, ts_ms=0)
        return _change(table, keyrow, _json(value, "value"))
    except AdaptError as exc:
        raise AdaptError(f"{topic}: {exc}") from None


def table_of(topic: str) -> str:
    """Return the source table of a change topic ``<prefix>.<schema>.<table>``."""
    parts = topic.split(".")
    if len(parts) < 3 or parts[-1] not in COLUMNS:
        raise AdaptError(f"{topic!r} is not a change topic of a Feedline table {sorted(COLUMNS)}")
    return parts[-1]


def parse_timestamptz(raw: Any) -> datetime:
    """Parse Debezium's ISO-8601 ``timestamptz`` into aware UTC, truncated to milliseconds."""
    m = _ISO.fullmatch(raw) if isinstance(raw, str) else None
    if m is None:
        raise AdaptError(f"not an ISO-8601 timestamptz: {raw!r}")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    millis = int((frac or "0").ljust(3, "0")[:3])
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), millis * 1000
        )
        tz = UTC if zone == "Z" else timezone(_offset(zone))
        return local.replace(tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise AdaptError(f"invalid timestamptz {raw!r}: {exc}") from None


def _offset(zone: str) -> timedelta:
    digits = zone[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return -delta if zone[0] == "-" else delta


def _json(raw: bytes | None, what: str) -> Any:
    if raw is None:
        raise AdaptError(f"{what} is missing")
    if not isinstance(raw, bytes | bytearray | memoryview | str):
        raise AdaptError(f"{what} is {type(raw).__name__}, not bytes")
    try:
        # orjson: a third of the stdlib parser's CPU on a Debezium envelope (~600 bytes,
        # key and value: ~7 µs instead of ~18); it rejects what json did (and NaN).
        doc = orjson.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise AdaptError(f"{what} is not JSON: {exc}") from None
    # A converter left at schemas.enable=true wraps the payload; accept it rather than fail.
    if isinstance(doc, dict) and set(doc) == {"schema", "payload"}:
        doc = doc["payload"]
    return doc


def _key(table: str, doc: Any) -> dict[str, int]:
    if not isinstance(doc, dict):
        raise AdaptError(f"key is not a JSON object: {doc!r:.200}")
    return {name: _int(doc.get(name), f"key.{name}") for name in KEYS[table]}


def _change(table: str, keyrow: dict[str, int], doc: Any) -> ChangeEvent:
    if not isinstance(doc, dict):
        raise AdaptError(f"value is not a JSON object: {doc!r:.200}")
    op = doc.get("op")
    if op == "t":
        raise AdaptError("TRUNCATE events are not supported: rebuild the read model instead")
    if op not in _ROW_OPS:
        raise AdaptError(f"unknown op {op!r}")
    source = doc.get("source")
    if not isinstance(source, dict):
        raise AdaptError("value.source is missing or not an object")
    if source.get("table") not in (None, table):
        raise AdaptError(f"source.table {source.get('table')!r} does not match the topic")
    lsn = _int(source.get("lsn"), "source.lsn")
    if not 0 < lsn < TERMINAL:
        raise AdaptError(f"source.lsn {lsn} is out of range (0, TERMINAL)")
    before = _row(table, doc.get("before"), "before", required=op == "d")
    after = _row(table, doc.get("after"), "after", required=op != "d")
    row = after if after is not None else before
    assert row is not None
    if any(row[name] != value for name, value in keyrow.items()):
        raise AdaptError(f"key {keyrow} does not match the row's primary key")
    ts_ms = _int(source.get("ts_ms", doc.get("ts_ms", 0)), "source.ts_ms")
    return ChangeEvent(table, op, keyrow, before, after, lsn=lsn, ts_ms=ts_ms)


def _row(table: str, raw: Any, what: str, required: bool) -> dict[str, Any] | None:
    if raw is None:
        if required:
            raise AdaptError(f"{what} is missing")
        return None
    if not isinstance(raw, dict):
        raise AdaptError(f"{what} is not an object")
    row = dict(raw)  # unknown extra columns pass through untouched
    for name, kind in COLUMNS[table].items():
        value = raw.get(name)
        if value is None:
            hint = " (is the table REPLICA IDENTITY FULL?)" if what == "before" else ""
            raise AdaptError(f"{what}.{name} is missing{hint}")
        row[name] = _typed(value, kind, f"{what}.{name}")
    return row


def _typed(value: Any, kind: str, what: str) -> Any:
    if kind == INT:
        return _int(value, what)
    if kind == TEXT:
        if not isinstance(value, str):
            raise AdaptError(f"{what} is not a string: {value!r:.100}")
        return value
    try:
        return parse_timestamptz(value)
    except AdaptError as exc:
        raise AdaptError(f"{what}: {exc}") from None


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AdaptError(f"{what} is not an integer: {value!r:.100}")
    return value
