"""Rate limits, counted in Redis: per client IP for sign-up, login and failed token lookups,
per user for posts, comments, likes and follows (issue 14).

- Counting is the ``limits`` library's sliding-window counter on Redis: two keys per limit
  and subject, one Lua call (one round trip) per limited request, constant memory, and no
  burst of twice the limit at a window edge as a fixed window allows. Requests on routes
  without a rule (every read) cost nothing: one dict lookup. The call itself goes over a
  connection of each thread's own (:class:`_Acquire`): the library's script and keys,
  without redis-py's per-command pool and instrumentation work (~110 -> ~40 µs of CPU).
- The rule is picked by the route Falcon matched (``req.uri_template``) and the method,
  never by the raw path, so ``//v1/shards`` or ``/v1/shards/`` count as ``/v1/shards``. A
  rule names a template, so it applies from the moment its route exists.
- A refused request gets 429 with ``Retry-After`` (seconds until one more would pass) and
  the JSON ``{"title", "description"}`` of every other error.
- Redis is not the source of truth of anything here: when it fails, requests go through
  (fail open, writes included; README, "Security", says why). A breaker then skips Redis
  for a doubling pause (0.5 s up to 5 s), so a dead Redis costs one failed call per pause,
  not one per request; it closes by itself once a call succeeds.
- Failed bearer-token lookups: the auth middleware asks :meth:`RateLimiter.refuse_token_lookup`
  before querying PostgreSQL and reports a miss to :meth:`RateLimiter.failed_token_lookup`.
  A token hash that matched nothing is remembered (per worker, ``negative_token_ttl_s``),
  so repeating it costs no query; distinct misses count per client IP, and once an IP is
  over its limit this worker refuses its lookups (429) without a query until the window
  lets it through again. A token is 256 random bits minted in a committed transaction, so
  a hash that matched nothing cannot start matching later: the negative cache is safe.
- The client IP is the socket peer (``REMOTE_ADDR``); behind proxies listed in
  ``FEEDLINE_RATE_TRUSTED_PROXIES`` it is the rightmost X-Forwarded-For hop that is not one
  of them. IPv6 clients count per /64, the smallest block one subscriber usually gets.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from typing import Any

import falcon
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from prometheus_client import Counter
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

from feedline.breaker import Breaker
from feedline.settings import RateLimitSettings, Settings

logger = logging.getLogger(__name__)

# A dead Redis is skipped for 0.5 s, doubling to 5 s: one failed call per pause.
BREAKER_BASE_S, BREAKER_MAX_S = 0.5, 5.0

# Not under cache_keys.PREFIX ("fl:"): the near cache's Redis client tracking broadcasts
# every change under that prefix, and these counters change on every limited request.
KEY_PREFIX = "feedline-rl"

PER_IP = ("signup", "login", "failed_auth")
PER_USER = ("posts", "comments", "likes", "follows")
# (method, route template) -> rule. Templates are ROUTES' own spelling (a unit test checks
# that each one is routed and has the responder).
ROUTE_RULES: dict[tuple[str, str], str] = {
    ("POST", "/v1/users"): "signup",
    ("POST", "/v1/sessions"): "login",
    ("POST", "/v1/shards"): "posts",
    ("POST", "/v1/shards/{shard_id:id}/comments"): "comments",
    ("PUT", "/v1/shards/{shard_id:id}/like"): "likes",
    ("DELETE", "/v1/shards/{shard_id:id}/like"): "likes",
    ("PUT", "/v1/following/{user_id:id}"): "follows",
    ("DELETE", "/v1/following/{user_id:id}"): "follows",
}
WHAT = {
    "signup": "sign-ups from this address",
    "login": "logins from this address",
    "failed_auth": "invalid bearer tokens from this address",
    "posts": "new shards",
    "comments": "comments",
    "likes": "likes and unlikes",
    "follows": "follows and unfollows",
}

LIMITED = Counter("feedline_rate_limited", "Requests refused 429 by a rate limit", ["rule"])
FAILED_OPEN = Counter(
    "feedline_rate_failed_open",
    "Rate-limit checks let through unchecked: Redis failed, or its breaker was open",
)
NEGATIVE_HITS = Counter(
    "feedline_rate_negative_token_hits",
    "Bearer tokens refused from the negative cache, without a PostgreSQL query",
)


def too_many(rule: str, retry_after_s: int) -> falcon.HTTPTooManyRequests:
    return falcon.HTTPTooManyRequests(
        title="Too many requests",
        description=f"Rate limit reached for {WHAT[rule]}; retry in {retry_after_s} s.",
        retry_after=retry_after_s,
    )


class RateLimiter:
    """Falcon middleware (after the auth middleware) plus the auth middleware's two hooks."""

    def __init__(self, settings: RateLimitSettings, redis_url: str):
        self._enabled = settings.enabled
        self._limits: dict[str, list[RateLimitItem]] = {
            rule: parse_many(getattr(settings, rule)) for rule in (*PER_IP, *PER_USER)
        }
        t = settings.redis_timeout_s
        # Connects on first use; no retries: a failure is answered by failing open at once.
        self._storage = RedisStorage(
            settings.redis_url or redis_url,
            key_prefix=KEY_PREFIX,
            socket_timeout=t,
            socket_connect_timeout=t,
            retry=Retry(NoBackoff(), 0),
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._acquire = _Acquire(self._storage)
        self._breaker = Breaker(BREAKER_BASE_S, BREAKER_MAX_S, _redis_state)
        self._trusted = [ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies]
        self._negative = _Expiring(settings.negative_token_size)
        self._negative_ttl_s = settings.negative_token_ttl_s
        self._blocked = _Expiring(settings.negative_token_size)  # subject -> refused until

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(settings.rate, settings.redis.url)

    # -- middleware ------------------------------------------------------------------

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        rule = ROUTE_RULES.get((req.method, req.uri_template))
        if rule is None or resource is None:
            return
        if rule in PER_IP:
            self.enforce(rule, self.client(req))
        else:
            user_id = getattr(req.context, "user_id", None)
            # The auth middleware ran first; without a caller the responder refuses anyway.
            self.enforce(rule, f"user:{user_id}" if user_id is not None else self.client(req))

    # -- the auth middleware's hooks -------------------------------------------------

    def refuse_token_lookup(self, req: falcon.Request, digest: bytes) -> bool:
        """Call before looking a token up in PostgreSQL (after the token cache missed).

        True: this hash matched no account moments ago; answer 401 without a query.
        Raises 429 while this client's failed lookups are over their limit. Else False.
        """
        now = time.monotonic()
        if self._negative.live(digest, now):
            NEGATIVE_HITS.inc()
            return True
        until = self._blocked.get(self.client(req), now)
        if until is not None:
            LIMITED.labels("failed_auth").inc()
            raise too_many("failed_auth", max(1, math.ceil(until - now)))
        return False

    def failed_token_lookup(self, req: falcon.Request, digest: bytes) -> None:
        """Call when a well-formed token matched no (unexpired) account: remembers the hash
        and counts the miss against the client IP; raises 429 once that is over its limit."""
        now = time.monotonic()
        self._negative.put(digest, now + self._negative_ttl_s, now)
        subject = self.client(req)
        retry_s = self.check("failed_auth", subject)
        if retry_s is not None:
            self._blocked.put(subject, now + retry_s, now)
            raise too_many("failed_auth", retry_s)

    # -- counting ----------------------------------------------------------------------

    def enforce(self, rule: str, subject: str) -> None:
        """Count one request of ``subject`` under ``rule``; raise 429 if over a limit."""
        retry_s = self.check(rule, subject)
        if retry_s is not None:
            raise too_many(rule, retry_s)

    def check(self, rule: str, subject: str) -> int | None:
        """Count one request; None if it may pass, else the seconds until one more would."""
        if not self._enabled:
            return None
        if not self._breaker.allow():
            FAILED_OPEN.inc()
            return None
        try:
            # Every limit of the rule, in order; the first one that refuses ends the count.
            over = next((i for i in self._limits[rule] if not self._acquire(i, rule, subject)),
                        None)  # fmt: skip
            retry_s = None if over is None else self._retry_after(over, rule, subject)
        except RedisError as exc:
            self._breaker.failure(exc)
            FAILED_OPEN.inc()
            return None
        self._breaker.success()
        if retry_s is not None:
            LIMITED.labels(rule).inc()
        return retry_s

    def _retry_after(self, item: RateLimitItem, rule: str, subject: str) -> int:
        """Whole seconds until one more request would pass (the window, if Redis won't say)."""
        try:
            reset = self._limiter.get_window_stats(item, rule, subject).reset_time
        except RedisError:
            return item.get_expiry()
        return max(1, math.ceil(reset - time.time()))

    def client(self, req: falcon.Request) -> str:
        """The rate-limit subject of the client's address (see the module docstring)."""
        addr = req.remote_addr or ""
        if self._trusted and self._is_trusted(addr):
            hops = (req.get_header("X-Forwarded-For") or "").split(",")
            for hop in reversed([h.strip() for h in hops if h.strip()]):
                if not self._is_trusted(hop):
                    addr = hop
                    break
        return subject_of(addr)

    def _is_trusted(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)


class _Acquire:
    """Count one hit the way ``SlidingWindowCounterRateLimiter.hit`` does, in fewer steps.

    The same Lua script (by its SHA; loaded with EVAL if Redis lost it), the same keys and
    arguments as the library's ``RedisStorage.acquire_sliding_window_entry``, sent over a
    connection each thread keeps (taken from the storage's pool once, never returned), so
    a hit costs one ``EVALSHA`` and no pool or instrumentation work. A Redis error is
    raised as the library's call would raise it (the connection reconnects on next use).
    """

    def __init__(self, storage: RedisStorage):
        self._storage = storage
        self._script = storage.lua_acquire_sliding_window
        self._local = threading.local()

    def __call__(self, item: RateLimitItem, *identifiers: str) -> bool:
        storage = self._storage
        key = item.key_for(*identifiers)
        current = storage.prefixed_key(storage._current_window_key(key))
        previous = storage.prefixed_key(storage._previous_window_key(key))
        args = (2, previous, current, item.amount, item.get_expiry(), 1)
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = storage.get_connection().connection_pool.get_connection()
        try:
            conn.send_command("EVALSHA", self._script.sha, *args)
            return bool(conn.read_response())
        except NoScriptError:
            conn.send_command("EVAL", self._script.script, *args)
            return bool(conn.read_response())


def subject_of(addr: str) -> str:
    """``ip:<address>``; an IPv6 address stands for its /64, a v4-mapped one for the v4."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return f"ip:{addr[:64]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"ip:{ip.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network((ip, 64), strict=False)}"
    return f"ip:{ip}"


class _Expiring:
    """A bounded map of key -> deadline (monotonic s); the oldest entries go first."""

    def __init__(self, size: int):
        self._size = max(1, size)
        self._items: OrderedDict[Any, float] = OrderedDict()
        self._lock = threading.Lock()  # gthread workers share it between threads

    def get(self, key: Any, now: float) -> float | None:
        with self._lock:
            until = self._items.get(key)
            if until is None:
                return None
            if until <= now:
                del self._items[key]
                return None
            return until

    def live(self, key: Any, now: float) -> bool:
        return self.get(key, now) is not None

    def put(self, key: Any, until: float, now: float) -> None:
        with self._lock:
            self._items[key] = until
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def _redis_state(failing: bool, exc: BaseException | None) -> None:
    """Log the limiter's Redis going down (limits not enforced) or coming back."""
    if failing:
        logger.warning(
            "redis failed (%s): rate limits are not enforced until it is back",
            type(exc).__name__,
        )
    else:
        logger.info("redis is back: rate limits apply again")
