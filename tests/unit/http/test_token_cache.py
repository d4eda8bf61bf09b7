"""The token cache's lifetime rule: long only while revocations are confirmed broadcast.

Pure logic: ``Broadcast`` stands in for :class:`feedline.http.revocations.Revocations`
(whose real behaviour over Redis is covered by tests/integration/http/test_http_accounts.py)
so a test can say whether the broadcast is confirmed and see what was published.
"""

from __future__ import annotations

import time

from feedline.http.token_cache import TokenCache

BOUND = 0.05


class Broadcast:
    def __init__(self, trusted: bool):
        self.is_trusted = trusted
        self.published: list[object] = []
        self.started = False

    def listen(self, on_token, on_user) -> None:
        self.on_token, self.on_user = on_token, on_user

    def start(self) -> None:
        self.started = True

    def covers(self, since: float) -> bool:
        return self.is_trusted

    def publish_token(self, digest: bytes) -> None:
        self.published.append(digest)

    def publish_user(self, user_id: int) -> None:
        self.published.append(user_id)


def test_entries_outlive_the_bound_only_while_the_broadcast_is_confirmed():
    broadcast = Broadcast(trusted=True)
    cache = TokenCache(60.0, 10, BOUND, broadcast)
    cache.put(b"a", 1, generation=cache.generation())
    assert broadcast.started
    time.sleep(BOUND * 2)
    assert cache.get(b"a") == 1
    broadcast.is_trusted = False
    assert cache.get(b"a") is None
    broadcast.is_trusted = True
    assert cache.get(b"a") == 1  # kept meanwhile, good again once confirmed


def test_without_a_broadcast_entries_live_only_the_bound():
    cache = TokenCache(60.0, 10, BOUND)
    cache.put(b"a", 1)
    assert cache.get(b"a") == 1
    time.sleep(BOUND * 2)
    assert cache.get(b"a") is None


def test_the_bound_counts_from_the_start_of_the_lookup():
    cache = TokenCache(60.0, 10, BOUND)
    cache.put(b"a", 1, since=time.monotonic() - BOUND)
    assert cache.get(b"a") is None


def test_an_entry_never_outlives_its_token():
    cache = TokenCache(60.0, 10, BOUND, Broadcast(trusted=True))
    cache.put(b"a", 1, valid_s=BOUND)
    time.sleep(BOUND * 2)
    assert cache.get(b"a") is None


def test_revocations_drop_here_and_are_published_and_received_ones_drop_too():
    broadcast = Broadcast(trusted=True)
    cache = TokenCache(60.0, 10, BOUND, broadcast)
    for digest, user in ((b"a", 1), (b"b", 1), (b"c", 2), (b"d", 3)):
        cache.put(digest, user)
    cache.revoke(b"a")
    cache.revoke_user(2)
    assert broadcast.published == [b"a", 2]
    assert (cache.get(b"a"), cache.get(b"b"), cache.get(b"c")) == (None, 1, None)
    broadcast.on_token(b"b")  # another worker's revocations, as the listener applies them
    broadcast.on_user(3)
    assert (cache.get(b"b"), cache.get(b"d")) == (None, None)


def test_token_cache_expires_and_is_bounded():
    cache = TokenCache(ttl_s=0.05, max_size=2)
    cache.put(b"a", 1)
    cache.put(b"b", 2)
    cache.put(b"c", 3)
    assert cache.get(b"a") is None and cache.get(b"c") == 3
    time.sleep(0.06)
    assert cache.get(b"c") is None


def test_a_revocation_applied_during_the_lookup_leaves_only_the_bound():
    """The lookup read the row before the revoking commit; the broadcast's drop arrived
    while the query ran (nothing to drop yet); then the lookup stores its result. That
    entry must not live 60 s on the broadcast's word: it gets the short bound."""
    broadcast = Broadcast(trusted=True)
    cache = TokenCache(60.0, 10, BOUND, broadcast)
    started = time.monotonic()
    generation = cache.generation()
    broadcast.on_token(b"a")  # the revocation arrives mid-lookup
    cache.put(b"a", 1, since=started, generation=generation)
    assert cache.get(b"a") == 1  # within the bound, as any lookup
    time.sleep(BOUND * 2)
    assert cache.get(b"a") is None


def test_a_lookup_without_a_generation_is_not_trusted_beyond_the_bound():
    cache = TokenCache(60.0, 10, BOUND, Broadcast(trusted=True))
    cache.put(b"a", 1)
    time.sleep(BOUND * 2)
    assert cache.get(b"a") is None
