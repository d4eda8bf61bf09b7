"""Decode Debezium messages: every op, tombstones, heartbeats, and malformed input."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from feedline.errors import AdaptError
from feedline.strategies.decode import decode, is_heartbeat, parse_timestamptz
from tests.unit.strategies.events import T0, message, row, tombstone


@pytest.mark.parametrize("op", ["c", "r"])
def test_create_and_snapshot_read_decode_after(op):
    ev = decode(*message("shards", op, after=row("shards"), lsn=4242))
    assert ev is not None
    assert (ev.table, ev.op, ev.key, ev.lsn, ev.before) == ("shards", op, {"id": 10}, 4242, None)
    assert ev.after == {**row("shards"), "created_at": T0}
    assert ev.ts_ms == 1_795_701_928_123  # source.ts_ms: the commit time


def test_update_keeps_both_images():
    ev = decode(*message("shards", "u", before=row("shards"), after=row("shards", like_count=1)))
    assert ev.op == "u" and ev.before["like_count"] == 0 and ev.after["like_count"] == 1


def test_delete_carries_whole_before_row():
    ev = decode(*message("likes", "d", before=row("likes")))
    assert ev.op == "d" and ev.after is None and ev.row == {**row("likes"), "created_at": T0}
    assert ev.key == {"shard_id": 10, "user_id": 2}


def test_tombstone_is_op_t_with_key_only():
    ev = decode(*tombstone("followers", follower_id=2, followee_id=1))
    assert (ev.op, ev.key, ev.before, ev.after) == (
        "t",
        {"follower_id": 2, "followee_id": 1},
        None,
        None,
    )


def test_heartbeat_is_not_an_event():
    assert is_heartbeat("__debezium-heartbeat.feedline")
    assert decode("__debezium-heartbeat.feedline", b'{"serverName":"feedline"}', b"{}") is None


def test_schema_envelope_is_unwrapped():
    topic, key, value = message("users", "c", after=row("users"))
    wrapped = json.dumps({"schema": {}, "payload": json.loads(value)}).encode()
    assert decode(topic, key, wrapped).after["handle"] == "ada"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-26T14:05:28.123456Z", T0),
        ("2026-11-26T14:05:28.123999999Z", T0),  # truncated, never rounded up
        ("2026-11-26T14:05:28.12Z", T0.replace(microsecond=120000)),
        ("2026-11-26T14:05:28Z", T0.replace(microsecond=0)),
        ("2026-11-26T16:05:28.123+02:00", T0),
    ],
)
def test_timestamptz_parses_to_utc_milliseconds(raw, expected):
    got = parse_timestamptz(raw)
    assert got == expected and got.utcoffset() == timedelta(0)


def test_same_instant_gives_equal_clustering_values_for_insert_and_delete():
    ins = decode(
        *message("comments", "c", after=row("comments", created_at="2026-11-26T14:05:28.1239Z"))
    )
    dele = decode(
        *message("comments", "d", before=row("comments", created_at="2026-11-26T14:05:28.123Z"))
    )
    assert ins.after["created_at"] == dele.before["created_at"] == T0


def _mangle(doc: dict, path: str, value) -> bytes:
    doc = json.loads(json.dumps(doc))
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    node[last] = value
    return json.dumps(doc).encode()


GOOD = json.loads(message("shards", "c", after=row("shards"))[2])


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("op", "x", "unknown op"),
        ("op", "t", "TRUNCATE"),
        ("source", None, "source"),
        ("source.lsn", None, "source.lsn"),
        ("source.lsn", "0/16B3748", "source.lsn"),
        ("source.lsn", 2**62, "out of range"),
        ("source.table", "users", "does not match"),
        ("after", None, "after is missing"),
        ("after.body", 7, "after.body"),
        ("after.like_count", True, "after.like_count"),
        ("after.created_at", 1764165928123, "after.created_at"),
        ("after.created_at", "2026-13-40T00:00:00Z", "invalid timestamptz"),
        ("after.id", 11, "does not match the row's primary key"),
    ],
)
def test_malformed_values_are_adapt_errors(path, value, needle):
    with pytest.raises(AdaptError, match=needle):
        decode("feedline.public.shards", b'{"id": 10}', _mangle(GOOD, path, value))


def test_delete_without_full_before_image_names_replica_identity():
    before = {
        "id": 10,
        "author_id": None,
        "body": None,
        "like_count": None,
        "comment_count": None,
        "created_at": None,
    }
    with pytest.raises(AdaptError, match="REPLICA IDENTITY FULL"):
        decode(*message("shards", "d", before=before))


@pytest.mark.parametrize(
    ("topic", "key", "value"),
    [
        ("feedline.public.user_tokens", b'{"token_hash":"x"}', b"{}"),
        ("shards", b'{"id":1}', b"{}"),
        ("feedline.public.shards", b"not json", None),
        ("feedline.public.shards", None, None),
        ("feedline.public.shards", b'{"id":"1"}', None),
        ("feedline.public.shards", b"[1]", None),
        ("feedline.public.shards", b'{"id":1}', b"\xff\xfe"),
        ("feedline.public.shards", b'{"id":1}', b"[]"),
    ],
)
def test_bad_topics_keys_and_values_are_adapt_errors(topic, key, value):
    with pytest.raises(AdaptError):
        decode(topic, key, value)


json_values = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats(allow_nan=True) | hs.text(max_size=30),
    lambda inner: (
        hs.lists(inner, max_size=4) | hs.dictionaries(hs.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
topics = hs.sampled_from(
    [
        "feedline.public.users",
        "feedline.public.shards",
        "feedline.public.likes",
        "x.y.comments",
        "garbage",
        "",
    ]
)


@settings(max_examples=300, deadline=None)
@given(topics, hs.binary(max_size=64) | hs.none(), hs.binary(max_size=128) | hs.none())
def test_random_bytes_never_raise_anything_but_adapt_error(topic, key, value):
    with contextlib.suppress(AdaptError):
        decode(topic, key, value)


@settings(max_examples=500, deadline=None)
@given(
    hs.sampled_from(["users", "followers", "shards", "comments", "likes"]),
    hs.sampled_from(["c", "u", "d", "r"]),
    hs.lists(
        hs.tuples(
            hs.sampled_from(
                [
                    "op",
                    "source",
                    "source.lsn",
                    "source.ts_ms",
                    "source.table",
                    "before",
                    "after",
                    "after.created_at",
                    "after.id",
                    "after.shard_id",
                    "before.created_at",
                    "ts_ms",
                ]
            ),
            json_values,
        ),
        max_size=3,
    ),
)
def test_mangled_envelopes_never_raise_anything_but_adapt_error(table, op, edits):
    img = row(table)
    topic, key, value = message(
        table, op, before=img if op in "ud" else None, after=None if op == "d" else img
    )
    doc = json.loads(value)
    for path, new in edits:
        try:
            value = _mangle(doc, path, new)
            doc = json.loads(value)
        except (KeyError, TypeError):
            continue  # the parent was replaced by a non-object: keep the previous document
    try:
        ev = decode(topic, key, value)
    except AdaptError:
        return
    assert ev.lsn > 0 and ev.op in "cudr"
    assert isinstance(ev.row["created_at"], datetime) and ev.row["created_at"].tzinfo is UTC
