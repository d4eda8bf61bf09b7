"""Revocation broadcast over the real Redis: delivery, and what a lost subscription does.

A lost subscription loses the messages published while it is down, so entries looked up
before it came back must fall back to the 1 s bound: ``covers`` says so.
"""

from __future__ import annotations

import secrets
import time

import pytest
import redis

from feedline.http.revocations import Revocations

pytestmark = pytest.mark.integration


def wait_for(check, timeout: float = 2.0) -> float:
    """Poll ``check`` until true; return how long it took (fail at ``timeout``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "condition not reached"
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
def listener(settings):
    name = f"fl-test-revocations-{secrets.token_hex(4)}"
    revocations = Revocations(settings.redis.url, 1.0, client_name=name)
    received: list[object] = []
    revocations.listen(received.append, received.append)
    revocations.start()
    yield revocations, received, name
    revocations.close()


def test_revocations_reach_other_listeners_in_milliseconds(settings, listener):
    revocations, received, _ = listener
    wait_for(lambda: revocations.covers(time.monotonic()))
    publisher = Revocations(settings.redis.url)
    publisher.publish_token(b"\x01" * 32)
    publisher.publish_user(42)
    took = wait_for(lambda: len(received) == 2, timeout=0.5)
    assert received == [b"\x01" * 32, 42]
    print(f"delivered in {took * 1000:.1f} ms")


def test_a_lost_subscription_stops_covering_older_lookups(settings, listener):
    revocations, _, name = listener
    wait_for(lambda: revocations.covers(time.monotonic()))
    before = time.monotonic()
    assert revocations.covers(before)
    client = redis.Redis.from_url(settings.redis.url)
    listening = [c for c in client.client_list() if c.get("name") == name]
    [victim] = [c["id"] for c in listening if c.get("sub", "0") != "0"]
    client.client_kill_filter(_id=victim)
    # Messages published while it was down are lost: lookups from before stay uncovered
    # (1 s bound) even once it listens again; newer lookups are covered again.
    wait_for(lambda: not revocations.covers(before), timeout=0.5)
    wait_for(lambda: revocations.covers(time.monotonic()), timeout=2.0)
    assert not revocations.covers(before)
