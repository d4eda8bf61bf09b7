"""Check the pure validation rules: handles, bodies, ids, media types, JSON objects."""

from __future__ import annotations

import falcon
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedline.http import validation


@pytest.mark.parametrize("value", ["abc", "a_1", "x" * 30, "___", "0123456789"])
def test_good_handles_pass(value):
    assert validation.handle("handle", value) == value


@pytest.mark.parametrize(
    "value", ["ab", "x" * 31, "Abc", "a-b", "a b", "abc\n", "ábc", "", 123, None, ["abc"]]
)
def test_bad_handles_are_422(value):
    with pytest.raises(falcon.HTTPUnprocessableEntity):
        validation.handle("handle", value)


@pytest.mark.parametrize("value", ["x", "x" * 1000, "é" * 1000, "🙂 hi", " "])
def test_good_text_passes(value):
    assert validation.text("body", value) == value


@pytest.mark.parametrize("value", ["", "x" * 1001, "a\x00b", "\ud800", 5, None, {"a": 1}])
def test_bad_text_is_422(value):
    with pytest.raises(falcon.HTTPUnprocessableEntity):
        validation.text("body", value)


@given(st.text(min_size=1, max_size=1000).filter(lambda s: "\x00" not in s))
def test_any_storable_text_passes(value):
    assert validation.text("body", value) == value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", 1), ("42", 42), (str(2**63 - 1), 2**63 - 1)],
)
def test_ids_parse(raw, expected):
    assert validation.parse_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["0", "-1", "+1", "01", "1_0", " 1", "1 ", "1.0", "abc", "", "\u0661", str(2**63)]
)
def test_bad_ids_do_not_parse(raw):
    assert validation.parse_id(raw) is None


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_media_types_pass(content_type):
    validation.check_media_type(content_type)


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/json; charset=latin-1", "text/json"]
)
def test_other_media_types_are_415(content_type):
    with pytest.raises(falcon.HTTPUnsupportedMediaType):
        validation.check_media_type(content_type)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff{}", b'{"a": NaN}', b"[" * 100_000])
def test_malformed_json_is_400(raw):
    with pytest.raises(falcon.HTTPBadRequest):
        validation.decode_object(raw)


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"1", b"null"])
def test_non_objects_are_422(raw):
    with pytest.raises(falcon.HTTPUnprocessableEntity):
        validation.decode_object(raw)


def test_fields_reject_unknown_and_missing():
    fields = {"body": validation.text}
    assert validation.check_fields({"body": "x"}, fields) == {"body": "x"}
    with pytest.raises(falcon.HTTPUnprocessableEntity):
        validation.check_fields({"body": "x", "extra": 1}, fields)
    with pytest.raises(falcon.HTTPUnprocessableEntity):
        validation.check_fields({}, fields)
