"""Route the pipeline's feed notices to the streams they concern, and keep that routing true.

One Redis subscription per stream process (``feedline.notices.CHANNEL``) carries every
notice; the hub finds the connected readers each one concerns from what it knows of them:
an ``author A`` notice concerns every listener of A or of a reader following A, an
``edge F A`` notice the listeners of F. It only marks them *dirty*: each listener re-reads
its feed and sends the difference (``feedline.stream.listener``), so many notices cost one
read, and a notice that concerns nobody here costs a dictionary lookup.

What the hub knows of a reader (whom they follow) is read from the read model when they
connect and re-read for the pair named by every edge notice, so a notice late, repeated or
out of order cannot leave it wrong. If the subscription drops (Redis restarted, the
network), notices sent meanwhile are gone: once it is back, every listener reloads whom it
follows and re-reads its feed, which covers whatever was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from feedline import notices
from feedline.errors import BadNotice
from feedline.http import revocations

logger = logging.getLogger(__name__)

BACKOFF_S, BACKOFF_MAX_S = 0.2, 5.0


class Listener:
    """One open stream's routing state: its reader, whom they follow, and what to redo."""

    def __init__(self, user_id: int, token: str = ""):
        self.user_id = user_id
        self.token = token  # sha256 hex of the bearer token it was opened with (or its ticket's)
        self.revoked = False  # that token was revoked, or the account deleted: end the stream
        self.following: dict[int, int | None] = {}  # followee -> followed at (ms; None: unknown)
        self.offers: list[notices.ShardNotice] = []  # new shards to put on top, if they fit
        self.wake = asyncio.Event()  # something to do (below), or the process is closing
        self.dirty = True  # re-read the feed (a notice concerns it; the first read)
        self.edges: set[int] = set()  # followees whose edge to re-read
        self.reload = True  # re-read every followee (first read, or after notices were lost)
        self.gone = False  # the client hung up
        self.beat = False  # the hub's heartbeat tick came

    def notify(self) -> None:
        """Ask the stream to re-read the feed (many notices before it runs: one read)."""
        self.dirty = True
        self.wake.set()

    def offer(self, shard: notices.ShardNotice) -> None:
        """Tell the stream of a new shard it may put on top without a read (see Stream)."""
        self.offers.append(shard)
        self.wake.set()


class Hub:
    """Listeners by reader and by followee, fed by one subscription to the notice channel."""

    def __init__(self, redis_url: str):
        self._url = redis_url
        self._by_user: dict[int, set[Listener]] = defaultdict(set)
        self._by_followee: dict[int, set[Listener]] = defaultdict(set)
        self.subscribed = False
        self.closing = False
        self.notices = 0
        self.count = 0  # listeners registered

    def listeners(self) -> Iterable[Listener]:
        for group in list(self._by_user.values()):
            yield from list(group)

    def add(self, listener: Listener) -> None:
        """Register a stream before its first read: a notice from then on reaches it."""
        self._by_user[listener.user_id].add(listener)
        self.count += 1

    def remove(self, listener: Listener) -> None:
        if listener in self._by_user.get(listener.user_id, ()):
            self.count -= 1
        _discard(self._by_user, listener.user_id, listener)
        for followee in listener.following:
            _discard(self._by_followee, followee, listener)
        listener.following = {}

    def follows(
        self, listener: Listener, followees: dict[int, int | None], known: set[int]
    ) -> None:
        """Record that of ``known`` followees, the reader follows exactly ``followees``
        (followee -> followed at, ms)."""
        for gone in (listener.following.keys() & known) - followees.keys():
            _discard(self._by_followee, gone, listener)
            del listener.following[gone]
        for new in followees.keys() - listener.following.keys():
            self._by_followee[new].add(listener)
        listener.following.update(followees)

    async def heartbeats(self, every_s: float) -> None:
        """Wake every listener for a heartbeat each ``every_s``: one timer for the process,
        not a timeout per stream (10,000 idle streams cost 12.5% of a core that way)."""
        while not self.closing:
            await asyncio.sleep(every_s)
            for listener in self.listeners():
                listener.beat = True
                listener.wake.set()

    def close(self) -> None:
        """Wake every listener to end its stream (SIGTERM: clients resume elsewhere)."""
        self.closing = True
        for listener in self.listeners():
            listener.wake.set()

    def revoke(self, message: bytes) -> None:
        """End the streams of a revoked token (``t:<sha256 hex>``) or of a deleted account
        (``u:<id>``): the API's broadcast (``feedline.http.revocations``)."""
        kind, _, what = message.decode(errors="replace").partition(":")
        for listener in self.listeners():
            if (kind == "t" and listener.token == what) or (
                kind == "u" and str(listener.user_id) == what
            ):
                listener.revoked = True
                listener.wake.set()

    def route(self, message: bytes) -> None:
        """Mark the listeners a notice message concerns (an unreadable message is skipped)."""
        try:
            told = notices.decode(message)
        except BadNotice as exc:
            logger.warning("skipping a message on %s: %s", notices.CHANNEL, exc)
            return
        self.notices += len(told)
        for n in told:
            if isinstance(n, notices.ShardNotice):
                for listener in self._by_user.get(n.author_id, ()):
                    listener.offer(n)
                for listener in self._by_followee.get(n.author_id, ()):
                    listener.offer(n)
            elif isinstance(n, notices.AuthorNotice):
                for listener in self._by_user.get(n.author_id, ()):
                    listener.notify()
                for listener in self._by_followee.get(n.author_id, ()):
                    listener.notify()
            elif isinstance(n, notices.Resync):
                self._reload_all()
            else:
                for listener in self._by_user.get(n.follower_id, ()):
                    listener.edges.add(n.followee_id)
                    listener.notify()

    async def run(self) -> None:
        """Stay subscribed; after any gap in the subscription, make every listener reload."""
        delay = BACKOFF_S
        missed = False
        while not self.closing:
            # No retries inside redis-py: a silent reconnect would hide the gap we must see.
            client = aioredis.Redis.from_url(
                self._url,
                socket_connect_timeout=1.0,
                socket_keepalive=True,
                retry=Retry(NoBackoff(), 0),
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(notices.CHANNEL, revocations.CHANNEL)
                self.subscribed = True
                delay = BACKOFF_S
                if missed:
                    logger.warning("notice subscription back: every stream re-reads its feed")
                    self._reload_all()
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    if message["channel"] == revocations.CHANNEL.encode():
                        self.revoke(message["data"])
                    else:
                        self.route(message["data"])
            except (RedisError, OSError) as exc:
                if not missed or self.subscribed:
                    logger.warning("notice subscription lost: %s", exc)
            except Exception:  # never let the subscription die: every stream would go deaf
                logger.exception("notice subscription failed; subscribing again")
            finally:
                self.subscribed = False
                missed = True
                await _close_quietly(pubsub, client)
            await asyncio.sleep(delay * (0.5 + random.random()))  # jitter: not in lockstep
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _reload_all(self) -> None:
        for listener in self.listeners():
            listener.reload = True
            listener.notify()


def _discard(index: dict[int, set[Listener]], key: int, listener: Listener) -> None:
    group = index.get(key)
    if group is not None:
        group.discard(listener)
        if not group:
            del index[key]


async def _close_quietly(*closables: Any) -> None:
    for c in closables:
        with contextlib.suppress(RedisError, OSError):
            await c.aclose()
