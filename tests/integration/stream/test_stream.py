"""``GET /v1/feed/stream`` on the real stack: the stream process, the pipeline, the API.

Writes go through the API (in process), the pipeline under test applies them, and a real
SSE client (``tests.sse.LiveView``: httpx-sse) reads the stream process the Procfile runs.
The contract: the stream keeps a client's view equal to ``GET /v1/feed?limit=N`` (items
in, deletes out, byte-identical item JSON), resumes from any event id with nothing missing
and nothing twice, authenticates by bearer token or one-use ticket, and answers bad
requests with JSON 4xx.
"""

from __future__ import annotations

import signal
import socket
import time
from typing import Any

import httpx
import pytest

from tests.integration.http.conftest import PASSWORD
from tests.integration.stream.conftest import ApiUser, feed_ids
from tests.sse import LiveView, StreamProcess, free_port, wait

pytestmark = pytest.mark.integration
PATH = "/v1/feed/stream"


def post(client: Any, user: ApiUser, body: str = "hello") -> int:
    resp = client.simulate_post("/v1/shards", json={"body": body}, headers=user.headers)
    assert resp.status_code == 201, resp.text
    return resp.json["id"]


def delete(client: Any, user: ApiUser, shard_id: int) -> None:
    resp = client.simulate_delete(f"/v1/shards/{shard_id}", headers=user.headers)
    assert resp.status_code == 204, resp.text


def follow(client: Any, follower: ApiUser, followee: ApiUser, on: bool = True) -> None:
    method = client.simulate_put if on else client.simulate_delete
    resp = method(f"/v1/following/{followee.id}", headers=follower.headers)
    assert resp.status_code in (200, 201, 204), resp.text


def settled(client: Any, user: ApiUser, view: LiveView, expected: list[int]) -> None:
    """Wait until GET /v1/feed's head is ``expected`` and the stream's view equals it."""

    def same() -> bool:
        feed = feed_ids(client, user, view.limit)
        assert feed == expected, f"feed {feed} != {expected}"
        assert view.ordered() == expected, f"view {view.ordered()} != feed {expected}"
        return True

    wait(same, 30, "the stream's view never matched the feed")


def test_items_arrive_as_the_feed_shows_them_and_leave_on_delete_and_unfollow(
    client, signup, pipeline, stream: StreamProcess
):
    reader, author = signup(), signup()
    follow(client, reader, author)
    first = post(client, author, "before the stream")
    wait(lambda: first in feed_ids(client, reader, 5), 30, "not in the feed")
    view = LiveView(stream.url + PATH, reader.headers, limit=5).open()
    try:
        assert view.status == 200
        settled(client, reader, view, [first])
        without_read = stream.health()["reads"]["items"]
        second = post(client, author, "while streaming")
        settled(client, reader, view, [second, first])
        assert stream.health()["reads"]["items"] > without_read  # on top, no feed read
        page = client.simulate_get("/v1/feed", params={"limit": 5}, headers=reader.headers)
        assert view.items[second] == page.json["items"][0]  # the same JSON, byte for byte
        delete(client, author, first)
        settled(client, reader, view, [second])
        assert ("delete", {"id": first}) in view.events
        follow(client, reader, author, on=False)
        wait(lambda: view.ordered() == [], 30, "unfollow did not empty the view")
        assert ("delete", {"id": second}) in view.events
        assert view.duplicates == []
    finally:
        view.close()


def test_the_authors_own_posts_and_a_new_follows_backfill_stream_too(
    client, signup, pipeline, stream: StreamProcess
):
    reader, author = signup(), signup()
    old = post(client, author, "written before the follow")
    view = LiveView(stream.url + PATH, reader.headers, limit=5).open()
    try:
        own = post(client, reader, "my own shard")
        settled(client, reader, view, [own])
        follow(client, reader, author)  # the backfill brings the older shard in
        settled(client, reader, view, [own, old])
        assert view.duplicates == []
    finally:
        view.close()


def test_resuming_from_an_event_id_sends_what_was_missed_once(
    client, signup, pipeline, stream: StreamProcess
):
    reader, author = signup(), signup()
    follow(client, reader, author)
    shards = [post(client, author, f"shard {i}") for i in range(4)]
    view = LiveView(stream.url + PATH, reader.headers, limit=3).open()
    settled(client, reader, view, shards[::-1][:3])
    view.close()
    before = len(view.events)
    delete(client, author, shards[3])  # the newest the view holds
    delete(client, author, shards[0])  # one below the view: nothing to send
    newer = post(client, author, "later")
    expected = [newer, shards[2], shards[1]]
    wait(lambda: feed_ids(client, reader, 3) == expected, 30, "feed")
    view.resume()
    try:
        settled(client, reader, view, expected)
        assert view.events[before:] == [
            ("delete", {"id": shards[3]}),
            ("item", view.items[newer]),
        ]
        assert view.duplicates == []
    finally:
        view.close()


def test_a_cursor_parameter_resumes_like_last_event_id(
    client, signup, pipeline, stream: StreamProcess
):
    reader = signup()
    own = post(client, reader, "mine")
    view = LiveView(stream.url + PATH, reader.headers, limit=2).open()
    settled(client, reader, view, [own])
    view.close()
    again = LiveView(stream.url + PATH, reader.headers, limit=2, query=f"cursor={view.last_id}")
    again.open()
    try:
        time.sleep(1.5)  # a heartbeat's time: nothing is owed, nothing may come
        assert again.events == [] and again.status == 200
        newer = post(client, reader, "newer")
        wait(lambda: ("item", newer) in [(k, d["id"]) for k, d in again.events], 30, "live")
        assert own not in [d["id"] for _, d in again.events]
    finally:
        again.close()


def test_heartbeats_and_headers(client, signup, stream: StreamProcess):
    reader = signup()
    with (
        httpx.Client(timeout=httpx.Timeout(5.0)) as http,
        http.stream("GET", stream.url + PATH, headers=reader.headers) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert "no-cache" in resp.headers["cache-control"]
        started = time.monotonic()
        for line in resp.iter_lines():
            if line.startswith(": heartbeat"):
                break
        assert time.monotonic() - started < 4  # FEEDLINE_STREAM_HEARTBEAT_S=1 here


def test_a_ticket_opens_one_stream_once(client, signup, stream: StreamProcess):
    reader = signup()
    assert client.simulate_post("/v1/stream-tickets").status_code == 401
    resp = client.simulate_post("/v1/stream-tickets", headers=reader.headers)
    assert resp.status_code == 201, resp.text
    ticket = resp.json["ticket"]
    url = f"{stream.url}{PATH}?ticket={ticket}"
    with httpx.Client(timeout=5) as http:
        with http.stream("GET", url) as first:
            assert first.status_code == 200
        second = http.get(url)
    assert second.status_code == 401
    assert second.json()["description"] == "The ticket is unknown, used or expired."


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", PATH, {}, 401),
        ("GET", PATH, {"Authorization": "Bearer not-a-token"}, 401),
        ("GET", PATH + "?ticket=nope", {}, 401),
        ("GET", PATH + "?limit=0", "auth", 400),
        ("GET", PATH + "?limit=101", "auth", 400),
        ("GET", PATH + "?limit=x", "auth", 400),
        ("GET", PATH + "?limit=%C2%B2", "auth", 400),  # a digit to str.isdigit, not to int
        ("GET", PATH + "?limit=" + "9" * 5000, "auth", 400),
        ("GET", PATH + "?since=1", "auth", 400),
        ("GET", PATH + "?limit=2&limit=3", "auth", 400),
        ("GET", PATH, {"Last-Event-ID": "garbage!"}, 400),
        ("GET", PATH + "?cursor=AQEA&limit=5", "auth", 400),  # a position for limit=1
        ("POST", PATH, "auth", 405),
        ("GET", "/v1/feed", "auth", 404),
        ("GET", "//v1/feed/stream", {}, 404),
    ],
)
def test_bad_requests_get_a_json_4xx(signup, stream, method, path, headers, status):
    if headers == "auth":
        headers = signup().headers
    resp = httpx.request(method, stream.url + path, headers=headers, timeout=5)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"title", "description"}


def test_a_stream_ends_at_its_maximum_age_and_resumes(client, signup, pipeline, tmp_path):
    """How late a revoked token stops streaming: FEEDLINE_STREAM_MAX_AGE_S (2 s here)."""
    reader = signup()
    own = post(client, reader, "mine")
    server = StreamProcess(tmp_path / "stream.log", FEEDLINE_STREAM_MAX_AGE_S="2").start()
    view = LiveView(server.url + PATH, reader.headers, limit=5).open()
    try:
        wait(lambda: view.ordered() == [own], 30, "no first item")
        assert view.ended.wait(20), "the stream outlived its maximum age"
        view.resume()
        newer = post(client, reader, "newer")
        wait(lambda: view.ordered() == [newer, own], 30, "not resumed")
        assert view.duplicates == []
    finally:
        view.close()
        server.stop()


def test_a_revoked_token_ends_its_streams_at_once(client, signup, stream: StreamProcess):
    """Logging out (the API's revocation broadcast) ends the streams opened with that token,
    by bearer or by a ticket it asked for; another token of the same user keeps streaming."""
    reader = signup()
    other = client.simulate_post(
        "/v1/sessions", json={"handle": reader.handle, "password": PASSWORD}
    ).json["token"]
    ticket = client.simulate_post("/v1/stream-tickets", headers=reader.headers).json["ticket"]
    by_bearer = LiveView(stream.url + PATH, reader.headers).open()
    by_ticket = LiveView(stream.url + PATH, {}, query=f"ticket={ticket}").open()
    kept = LiveView(stream.url + PATH, {"Authorization": f"Bearer {other}"}).open()
    try:
        assert (by_bearer.status, by_ticket.status, kept.status) == (200, 200, 200)
        resp = client.simulate_delete("/v1/sessions/current", headers=reader.headers)
        assert resp.status_code == 204, resp.text
        assert by_bearer.ended.wait(5), "the bearer stream outlived its token"
        assert by_ticket.ended.wait(5), "the ticket stream outlived the token behind it"
        assert not kept.ended.wait(1.5)
    finally:
        for view in (by_bearer, by_ticket, kept):
            view.close()


def test_sigterm_ends_every_stream_cleanly(client, signup, pipeline, tmp_path):
    reader = signup()
    own = post(client, reader, "mine")
    server = StreamProcess(tmp_path / "stream.log").start()
    view = LiveView(server.url + PATH, reader.headers, limit=5).open()
    try:
        wait(lambda: view.ordered() == [own], 30, "no first item")
        started = time.monotonic()
        # uvicorn re-raises the signal once it has shut down, as a good citizen does
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert view.ended.wait(5), "the stream did not end"
        assert time.monotonic() - started < 6
    finally:
        view.close()


def test_a_client_that_stops_reading_is_dropped_without_slowing_others(
    client, signup, pipeline, tmp_path
):
    """A socket that never reads: the server's writes back up into its (bounded) buffers,
    the send times out (0.5 s here) and the stream is dropped; another stream still flows.
    Each unfollow and follow of an author with 30 shards of 1,000 characters sends ~100 KB."""
    reader, author, other = signup(), signup(), signup()
    for i in range(30):
        post(client, author, f"{i:04d}" + "x" * 996)
    follow(client, reader, author)
    server = StreamProcess(tmp_path / "stream.log", FEEDLINE_STREAM_SEND_TIMEOUT_S="0.5").start()
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    stuck.connect(("127.0.0.1", server.port))
    request = f"GET {PATH}?limit=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {reader.token}"
    stuck.sendall((request + "\r\n\r\n").encode())
    view = LiveView(server.url + PATH, other.headers, limit=5).open()
    try:
        wait(lambda: server.health()["streams"] == 2, 10, "both streams open")
        for _ in range(20):  # wake the stuck stream until its writes back up
            follow(client, reader, author, on=False)
            time.sleep(0.5)
            follow(client, reader, author)
            time.sleep(0.5)
            if server.health()["streams"] == 1:
                break
        wait(lambda: server.health()["streams"] == 1, 30, "the stuck stream was not dropped")
        mine = post(client, other, "still flowing")
        wait(lambda: mine in view.items, 30, "the other stream stalled")
    finally:
        stuck.close()
        view.close()
        server.stop()


def test_a_read_model_failure_ends_the_stream_properly(signup, tmp_path):
    """Cassandra unreachable (a port nothing listens on): the first read fails, and the
    response still ends as HTTP says (the last chunk), after the ``retry:`` hint, so the
    client resumes later. It used to return mid-response: uvicorn logged "ASGI callable
    returned without completing response" and cut the connection (14,937 times in one
    reconnect storm on the cluster, where catch-up reads timed out)."""
    reader = signup()
    server = StreamProcess(tmp_path / "stream.log", FEEDLINE_CASSANDRA_PORT=str(free_port()))
    server.start()
    try:
        with httpx.stream("GET", server.url + PATH, headers=reader.headers, timeout=30) as resp:
            assert resp.status_code == 200
            body = b"".join(resp.iter_bytes())  # an incomplete chunked body raises here
        assert body.startswith(b"retry: ")
        assert b"event:" not in body
        log = (tmp_path / "stream.log").read_text()
        assert f"stream of user {reader.id} ended: cassandra unavailable" in log
        assert "without completing response" not in log
    finally:
        server.stop()
