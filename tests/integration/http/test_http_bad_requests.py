"""Bad requests get a JSON 4xx and never write anything."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def alice(signup):
    return signup()


@pytest.fixture
def nothing_written(client, alice, query):
    """Assert, after the test, that alice has neither shards nor comments nor a count."""
    yield
    assert query("SELECT count(*) FROM shards WHERE author_id = %s", alice.id) == [(0,)]
    assert query("SELECT count(*) FROM comments WHERE author_id = %s", alice.id) == [(0,)]
    assert query("SELECT shard_count FROM users WHERE id = %s", alice.id) == [(0,)]


BAD_BODIES = [
    (b"{", "application/json", 400),
    (b"\xff\xfe{}", "application/json", 400),
    (b'{"body": NaN}', "application/json", 400),
    (b"", "application/json", 400),
    (b'{"body": "x"}', "text/plain", 415),
    (b'{"body": "x"}', "application/x-www-form-urlencoded", 415),
    (b'{"body": "x"}', "application/json; charset=latin-1", 415),
    (b"[]", "application/json", 422),
    (b'"body"', "application/json", 422),
    (b"{}", "application/json", 422),
    (b'{"body": 5}', "application/json", 422),
    (b'{"body": null}', "application/json", 422),
    (b'{"body": ["x"]}', "application/json", 422),
    (b'{"body": ""}', "application/json", 422),
    (b'{"body": "x", "extra": 1}', "application/json", 422),
    (b'{"body": "a\\u0000b"}', "application/json", 422),
    (b'{"body": "\\ud800"}', "application/json", 422),
    ('{"body": "%s"}' % ("x" * 1001), "application/json", 422),
]


@pytest.mark.parametrize(("body", "content_type", "status"), BAD_BODIES)
@pytest.mark.usefixtures("nothing_written")
def test_bad_shard_bodies(client, alice, body, content_type, status):
    headers = {**alice.headers, "Content-Type": content_type}
    resp = client.simulate_post("/v1/shards", body=body, headers=headers)
    assert resp.status_code == status, resp.text
    assert set(resp.json) == {"title", "description"}


@pytest.mark.parametrize(("body", "content_type", "status"), BAD_BODIES)
@pytest.mark.usefixtures("nothing_written")
def test_bad_comment_bodies(client, signup, alice, body, content_type, status):
    author = signup()
    sid = client.simulate_post("/v1/shards", json={"body": "p"}, headers=author.headers).json["id"]
    headers = {**alice.headers, "Content-Type": content_type}
    resp = client.simulate_post(f"/v1/shards/{sid}/comments", body=body, headers=headers)
    assert resp.status_code == status, resp.text


@pytest.mark.usefixtures("nothing_written")
def test_body_over_the_cap_is_413(client, alice, settings):
    body = b'{"body": "' + b"x" * settings.web.max_body_bytes + b'"}'
    resp = client.simulate_post("/v1/shards", body=body, headers={**alice.headers, **JSON})
    assert resp.status_code == 413
    assert set(resp.json) == {"title", "description"}


def test_signup_with_bad_bodies(client):
    assert client.simulate_post("/v1/users", body=b"{", headers=JSON).status_code == 400
    assert client.simulate_post("/v1/users", body=b"handle=abc").status_code == 415
    resp = client.simulate_post("/v1/users", json={"handle": "abc_def", "admin": True})
    assert resp.status_code == 422


def test_1000_characters_of_multibyte_text_are_accepted(client, signup):
    bob = signup()
    resp = client.simulate_post("/v1/shards", json={"body": "é" * 1000}, headers=bob.headers)
    assert resp.status_code == 201
    assert len(resp.json["body"]) == 1000
