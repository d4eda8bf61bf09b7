"""Read every Feedline setting from the environment, once, into frozen dataclasses.

This is the only module that looks at ``os.environ``: everything else receives a
``Settings`` (or one of its parts) as a dependency. Defaults are the local stack's
(`make up`), so a developer needs no configuration at all.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from feedline.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

# Development defaults that a production deployment must replace (see require_production_ready).
DEV_CURSOR_SECRET = "feedline-dev-cursor-secret"  # noqa: S105 (refused in production)
DEV_PG_PASSWORD = "feedline-dev"  # noqa: S105 (refused in production)
DEV_PG_REPLICATION_PASSWORD = "feedline-replication-dev"  # noqa: S105 (dev only)
MIN_SECRET_BYTES = 32


# What each topology of the local stack changes from the single-node defaults. The cluster
# puts three Cassandra nodes, three Kafka brokers and two Connect workers on 127.0.0.2-4
# (each node on the standard ports of its own loopback address), and its PostgreSQL and
# Redis on other ports, so it can run beside a single-node stack. An explicit FEEDLINE_*
# variable still wins over these.
TOPOLOGIES: dict[str, dict[str, str]] = {
    "single": {},
    "cluster": {
        "FEEDLINE_CASSANDRA_HOSTS": "127.0.0.2,127.0.0.3,127.0.0.4",
        "FEEDLINE_CASSANDRA_REPLICATION": "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}",
        "FEEDLINE_CASSANDRA_LOCAL_DC": "datacenter1",
        "FEEDLINE_CASSANDRA_HEAP": "512M",
        "FEEDLINE_CASSANDRA_JMX_PORT": "7299",
        # Replicas make the periodic commit log safe: a write is acknowledged by two of
        # three nodes, and one node's lost tail comes back from the others.
        "FEEDLINE_CASSANDRA_COMMITLOG": "periodic",
        "FEEDLINE_KAFKA_BOOTSTRAP": "127.0.0.2:9092,127.0.0.3:9092,127.0.0.4:9092",
        "FEEDLINE_TOPIC_REPLICATION": "3",
        "FEEDLINE_TOPIC_MIN_ISR": "2",
        # The pipeline's group session must outlast the failover of its coordinator's
        # broker (fenced after 3 s, then found again): at 6 s it lost its partitions.
        "FEEDLINE_KAFKA_SESSION_TIMEOUT_MS": "10000",
        # A slow read goes to the next replica too (CassandraSettings.speculative_delay_s).
        "FEEDLINE_CASSANDRA_SPECULATIVE_DELAY_S": "0.3",
        "FEEDLINE_CONNECT_URL": "http://127.0.0.2:8083,http://127.0.0.3:8083",
        "FEEDLINE_PG_PORT": "5433",
        "FEEDLINE_REDIS_URL": "redis://127.0.0.1:6380/0",
    },
}


def _topology() -> str:
    name = os.environ.get("FEEDLINE_TOPOLOGY") or "single"
    if name not in TOPOLOGIES:
        raise ConfigError(f"FEEDLINE_TOPOLOGY must be one of {', '.join(TOPOLOGIES)}, got {name!r}")
    return name


def _raw(name: str) -> str | None:
    """The variable's value, else the topology's default for it, else None."""
    value = os.environ.get(name)
    return value if value is not None else TOPOLOGIES[_topology()].get(name)


def _env(name: str, default: str) -> str:
    raw = _raw(name)
    return default if raw is None else raw


def _int(name: str, default: int) -> int:
    raw = _raw(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _bounded(name: str, default: int, low: int, high: int) -> int:
    value = _int(name, default)
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


# Timer slack beyond this delays every timed wait of the JVMs by more than their work takes.
MAX_TIMER_SLACK_US = 10_000


def _float(name: str, default: float) -> float:
    raw = _raw(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


_RATE_ITEM = re.compile(r"\s*\d+\s*(/|\s+per\s+)\s*(\d+\s*)?(second|minute|hour|day)s?\s*")


def _rate(name: str, default: str) -> str:
    """A rate limit such as ``10/minute`` or ``10/minute;100/hour``."""
    raw = _env(name, default)
    if not all(_RATE_ITEM.fullmatch(item) for item in raw.split(";")):
        raise ConfigError(f"{name} must look like 10/minute or 10/minute;100/hour, got {raw!r}")
    return raw


def _list(name: str, default: str) -> tuple[str, ...]:
    """Comma-separated values, blanks dropped; at least one."""
    items = tuple(i.strip() for i in _env(name, default).split(",") if i.strip())
    if not items:
        raise ConfigError(f"{name} must name at least one value (comma-separated)")
    return items


def host_ports(addresses: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` as pairs (blanks dropped); ValueError names a bad entry."""
    pairs = []
    for item in (i.strip() for i in addresses.split(",")):
        host, _, port = item.rpartition(":")
        if item and (not host or not port.isdigit()):
            raise ValueError(f"{item!r} is not host:port")
        if item:
            pairs.append((host, int(port)))
    return pairs


def _bootstrap(name: str, default: str) -> str:
    """Kafka's ``host:port,host:port`` list, each entry checked."""
    raw = _env(name, default)
    try:
        if not host_ports(raw):
            raise ValueError("no host:port given")
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return raw


def _choice(name: str, choices: tuple[str, ...], *, any_case: bool = False) -> str:
    """One of ``choices``; the first is the default. ``any_case``: given in any case, the
    value is upper-cased (names such as consistency levels)."""
    raw = _env(name, choices[0])
    raw = raw.upper() if any_case else raw
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


# The levels one setting can use for both reads and writes (CassandraSettings.consistency);
# the first is the default.
CONSISTENCY_LEVELS = ("LOCAL_QUORUM", "QUORUM", "ALL", "ONE", "LOCAL_ONE")


def _networks(name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (``10.0.0.0/8``)."""
    items = tuple(i.strip() for i in _env(name, "").split(",") if i.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an IP address or network") from None
    return items


@dataclass(frozen=True)
class PostgresSettings:
    host: str = "127.0.0.1"
    port: int = 5432
    database: str = "feedline"
    # Three roles, least privilege (see feedline/stack/postgres.py): the web app, the
    # pipeline tools and the tests log in as ``user`` (DML on the tables, nothing else);
    # migrations run as ``owner_user`` (owns the database and its objects); Debezium logs
    # in as ``replication_user`` (REPLICATION, SELECT on the published tables).
    user: str = "feedline_app"
    password: str = field(default=DEV_PG_PASSWORD, repr=False)
    owner_user: str = "feedline"
    owner_password: str = field(default=DEV_PG_PASSWORD, repr=False)
    replication_user: str = "feedline_replication"
    replication_password: str = field(default=DEV_PG_REPLICATION_PASSWORD, repr=False)
    pool_min: int = 1
    pool_max: int = 8
    connect_timeout_s: int = 3
    statement_timeout_ms: int = 5000

    def dsn(self) -> str:
        """Return the application role's libpq DSN (never logged: it holds the password)."""
        return self._dsn(self.user, self.password)

    def owner_dsn(self) -> str:
        """Return the owner role's DSN: migrations only."""
        return self._dsn(self.owner_user, self.owner_password)

    def _dsn(self, user: str, password: str) -> str:
        return (
            f"host={self.host} port={self.port} dbname={self.database} "
            f"user={user} password={password}"
        )


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "feedline"
    partitions: int = 6
    replication_factor: int = 1
    # With acks=all (Connect's source producers and the dead-letter producer), a write is
    # acknowledged once this many replicas have it: 2 of 3 survives the loss of a broker.
    min_insync_replicas: int = 1
    retention_ms: int = 7 * 24 * 3600 * 1000
    group_id: str = "feedline-pipeline"
    dlq_topic: str = "feedline.dlq"
    session_timeout_ms: int = 6000

    def topic(self, table: str) -> str:
        return f"{self.topic_prefix}.public.{table}"


@dataclass(frozen=True)
class ConnectSettings:
    # Every worker's REST URL: any of them answers for the group (a worker forwards writes
    # to the leader), so tools try them in order and carry on when one is down.
    urls: tuple[str, ...] = ("http://127.0.0.1:8083",)
    connector_name: str = "feedline-postgres"
    slot_name: str = "feedline_slot"
    # Created by migrations/postgres/0001_init.sql, so it is fixed rather than a setting.
    publication_name: str = "feedline_pub"
    poll_interval_ms: int = 50


@dataclass(frozen=True)
class CassandraSettings:
    hosts: tuple[str, ...] = ("127.0.0.1",)
    port: int = 9042
    keyspace: str = "feedline"
    replication: str = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    # Reads and writes of the read model: LOCAL_QUORUM is one replica at RF 1 and two of
    # three at RF 3, where a write at quorum followed by a read at quorum always meets it
    # (2 + 2 > 3). ONE or LOCAL_ONE would read a replica the write may not have reached.
    consistency: str = "LOCAL_QUORUM"
    # The data centre whose nodes serve requests (token-aware within it); empty: the
    # driver takes the first contact point's, with a warning.
    local_dc: str = ""
    # A read (only reads: they are idempotent) not answered within this is sent again to
    # the next replica, up to twice: a coordinator that just died, or a restarted one still
    # cold, must not cost a failed feed read. 0: off, the default, since one node has no
    # other replica to ask: there it only arms a timer per read. (Those timers firing also
    # set off a driver bug, an event loop waking every few microseconds for good, which
    # feedline.cassandra.stop_idle_reactor_timer fixes.) The cluster topology sets 0.3.
    speculative_delay_s: float = 0.0


@dataclass(frozen=True)
class RedisSettings:
    url: str = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class StackSettings:
    """Where the no-Docker launcher keeps data, logs and downloads, and the JVM heaps."""

    topology: str = "single"
    var_dir: Path = ROOT / "var"
    lib_dir: Path = ROOT / "var" / "lib"  # downloaded jars: a cache shared by topologies
    m2_repo: Path = Path.home() / ".m2" / "repository"
    java_home: str = "/usr/lib/jvm/java-17-openjdk-amd64"
    kafka_heap: str = "512m"
    connect_heap: str = "512m"
    cassandra_heap: str = "1G"
    kafka_controller_port: int = 9093
    start_timeout_s: float = 120.0
    cassandra_storage_port: int = 7000
    cassandra_jmx_port: int = 7199  # the first node's; the next ones add 100 each
    # group: an acknowledged write is on disk (one node has no replica to cover a crash);
    # periodic: fsync every 10 s, safe only with replicas (the cluster).
    cassandra_commitlog: str = "group"
    # How late the kernel may wake the JVMs' timed sleeps (jvm.JvmService.timer_slack_us):
    # Cassandra's idle request threads poll every 10 us; 300 us cut its CPU per write ~45%.
    jvm_timer_slack_us: int = 300


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 16 * 1024
    pipeline_health_url: str = "http://127.0.0.1:8001"
    # Readiness, /health/actors and /metrics: a second gunicorn listener, loopback by default.
    ops_host: str = "127.0.0.1"
    ops_port: int = 8002
    # Production refuses a non-loopback ops_host unless this says a private network guards it.
    ops_allow_remote: bool = False
    # gunicorn: sync workers by default (2 cores); threads > 1 switches to gthread.
    workers: int = 3
    threads: int = 1
    # Shared directory for prometheus-client multiprocess mode ("" = one process).
    metrics_dir: str = ""


@dataclass(frozen=True)
class StreamSettings:
    """The live feed stream (feedline.stream): its own async process, the Procfile's ``stream:``."""

    host: str = "127.0.0.1"
    port: int = 8003
    # A comment line this often on an idle stream: proxies and clients see it is alive.
    heartbeat_s: float = 15.0
    # Items a stream keeps in step (the client's live view: GET /v1/feed?limit=N's page).
    default_limit: int = 20
    max_limit: int = 100
    # A client that has not taken an event's bytes within this long is disconnected (it
    # resumes by Last-Event-ID); the socket buffer is all a slow client ever holds.
    send_timeout_s: float = 10.0
    # Kernel send buffer of every stream socket (Linux doubles it): set, it is no longer
    # auto-tuned up to megabytes, so a stalled client holds at most this plus uvicorn's
    # 64 KiB before its sends time out.
    socket_send_buffer: int = 64 * 1024
    # A stream ends (clients resume by Last-Event-ID) at its token's expiry and after this
    # long in any case: how late a revoked token or a deleted account stops streaming.
    max_age_s: float = 600.0
    max_connections: int = 20_000
    # Threads for the read model's blocking reads (Cassandra, Redis) behind the event loop.
    read_threads: int = 8
    # The read model's Redis timeout in this process: its reads share the GIL with a loop
    # serving thousands of sockets, and the web's 50 ms timed out under load (bench stream:
    # ~45 "redis failed" warnings, each sending reads to Cassandra for a backoff).
    redis_timeout_s: float = 0.5


@dataclass(frozen=True)
class PipelineSettings:
    health_host: str = "127.0.0.1"
    health_port: int = 8001
    max_in_flight_per_partition: int = 1000
    batch_max_size: int = 200
    # How long a writer with a small batch and nothing else queued waits for more events
    # before it flushes: bigger flushes, fewer Cassandra round trips per event, at that
    # much freshness (0: flush at once). Off: with replica-set batches, 10 ms made no
    # measurable difference (bench cpu at 100 writes/s, 3 alternating runs: 11.57 s per
    # 1,000 writes at 0, 11.68 s at 10 ms).
    write_linger_s: float = 0.0
    write_concurrency: int = 64
    read_concurrency: int = 16  # a writer's fan-out reads in flight at once
    # A big expansion (fan-out, purge, backfill, unbackfill) goes this many followers or
    # feed rows per step, between other events' work (no head-of-line blocking).
    # 100, not 500: a 499-follower push author posting every 10 s took ordinary freshness p99
    # at 100 writes/s to 1.57x quiet in steps of 500, 1.00x in steps of 100 (same runs; a
    # 20,000-follower fan-out takes ~1.4x longer in steps of 100).
    expansion_chunk: int = 100
    commit_interval_s: float = 1.0
    # Bound on draining a partition's in-flight events on a revoke or a graceful stop; the
    # process's stop bound is derived from it (feedline.pipeline.main.stop_bounds).
    drain_timeout_s: float = 20.0
    # An event whose writes or expansions keep failing (a cluster condition, or a read
    # that times out on one huge partition) is retried with exponential backoff and jitter
    # up to this cap, for retry_budget_s; then it is parked: still unacknowledged (its
    # partition cannot commit past it), retried every parked_retry_s, counted and shown
    # in /health/actors. Never dead-lettered: only decoding or planning makes poison.
    retry_backoff_max_s: float = 30.0
    retry_budget_s: float = 300.0
    parked_retry_s: float = 60.0
    # A follow puts the followee's shards created at most this long before it in the
    # follower's feed (and every later one): docs/events.md, "The expected feed".
    backfill_window_s: int = 7 * 24 * 3600
    # A feed keeps its newest feed_max rows (docs/events.md, "Bounded feeds"): a feed is
    # trimmed (one range tombstone) once about feed_max * feed_trim_slack rows were written
    # into it since its last trim, so it holds at most ~(1 + slack) * feed_max rows.
    feed_max: int = 800
    feed_trim_slack: float = 0.1
    # Hybrid fan-out (docs/events.md, "Push and pull authors"): an author with more than
    # pull_threshold followers is a pull author (their new shards are merged into readers'
    # feeds at read time instead of copied into each), and a push author again below
    # pull_threshold * pull_hysteresis. 0 turns pull off: every author is push. The default
    # keeps ordinary freshness within 1.5x of quiet while an author just under it posts
    # (measured: 499 followers 1.26x, 1,499 followers 2.1-2.2x at 100 writes/s); pull costs
    # readers little (docs/events.md, "Cost model"; BENCHMARKS.md, freshness and reads).
    pull_threshold: int = 500
    pull_hysteresis: float = 0.8
    # Lets tests crash actors through the health port (POST /debug/fail). Off by default.
    fault_injection: bool = False


@dataclass(frozen=True)
class ReadSettings:
    """The read path: cursor signing, cache TTLs, and how fast to give up on a dependency."""

    # Signs pagination cursors (HMAC-SHA256); set FEEDLINE_CURSOR_SECRET in production.
    cursor_secret: str = field(default=DEV_CURSOR_SECRET, repr=False)
    # The secret before a rotation: cursors it signed are still accepted ("" = none).
    cursor_secret_previous: str = field(default="", repr=False)
    # Cached first 100 entries of a feed / a user's shards. Invalidation is event-driven;
    # the TTL only bounds staleness after a double fault (Redis down, then the pipeline
    # killed while holding pending invalidations) and sets the steady-state miss rate:
    # each active user misses once per TTL.
    feed_ttl_s: int = 900
    list_ttl_s: int = 300  # cached first pages of comments, followers, following
    object_ttl_s: int = 600  # hydrated shards and profiles
    negative_ttl_s: int = 30  # "no such shard/user"
    window: int = 100  # entries cached per list (serves any limit up to it)
    lease_ms: int = 1000  # stampede lock: one loader per missing key
    lease_wait_ms: int = 10  # how long others wait for that loader before loading themselves
    redis_timeout_s: float = 0.05  # socket connect/read timeout: Redis is local and fast
    redis_backoff_s: float = 0.5  # circuit breaker: first pause after a failure (doubles)
    redis_backoff_max_s: float = 5.0
    cassandra_timeout_s: float = 2.0
    cassandra_concurrency: int = 64  # a bulk read goes in waves of this many (ReadStore.run)
    cassandra_retry_s: float = 1.0  # after a failed connect, answer 503 this long before retrying
    # In-process copies of Redis entries per worker (feedline.readmodel.near_cache), dropped
    # when Redis reports the key changed; 0 turns them off. The age cap is a backstop only.
    near_cache_size: int = 20_000  # Redis entries (windows, shards, profiles)
    near_cache_pages: int = 5_000  # rendered feed and shard-list pages
    near_cache_max_age_s: float = 10.0
    # In-process bearer token -> user id, for this long while revocations are broadcast
    # (feedline.http.revocations); a revoked or expired token is refused by every worker
    # within token_revoked_within_s whether or not the broadcast works.
    token_cache_ttl_s: float = 60.0
    token_revoked_within_s: float = 1.0
    token_cache_size: int = 100_000


@dataclass(frozen=True)
class AccountSettings:
    """Passwords and bearer tokens: how long a token lives, how hard a password hash is."""

    # Fixed expiry from the moment a token is minted (sign-up or login); not sliding.
    token_ttl_s: int = 30 * 24 * 3600
    # argon2id cost, OWASP's minimum (19 MiB, 2 passes, 1 lane): ~28 ms of CPU per hash on
    # the 2-core box. Raising them re-hashes each password at its owner's next login.
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19 * 1024
    argon2_parallelism: int = 1


@dataclass(frozen=True)
class RateLimitSettings:
    """Request rate limits (feedline.http.ratelimit), counted in Redis per client or user.

    A limit is ``N/unit`` (second, minute, hour or day; ``N/M units`` also works); several
    joined by ``;`` all apply. The per-IP defaults are for a public deployment (a login
    costs ~28 ms of argon2 CPU, so 600/minute from one address would burn a third of a
    core); the test suite and the benchmarks, whose clients all come from 127.0.0.1, raise
    them in their own environment (tests/conftest.py, bench/env.py). Limits apply on the
    matched route, never the raw path.
    """

    enabled: bool = True
    signup: str = "10/minute;100/hour"  # per client IP: POST /v1/users
    login: str = "20/minute;200/hour"  # per client IP: POST /v1/sessions
    failed_auth: str = "60/minute"  # per client IP: bearer tokens that matched no account
    posts: str = "120/minute"  # per user: POST /v1/shards
    comments: str = "120/minute"  # per user: POST /v1/shards/{id}/comments
    likes: str = "300/minute"  # per user: like and unlike, together
    follows: str = "300/minute"  # per user: follow and unfollow, together
    # A token hash that matched no account is refused without a query this long (per worker).
    negative_token_ttl_s: float = 60.0
    negative_token_size: int = 10_000
    # Proxies (addresses or networks) whose X-Forwarded-For names the client; none by default.
    trusted_proxies: tuple[str, ...] = ()
    redis_url: str = ""  # the counters' Redis; "" = FEEDLINE_REDIS_URL
    redis_timeout_s: float = 0.05  # past it the request goes through (fails open)


@dataclass(frozen=True)
class Settings:
    """Every setting; ``env`` is ``FEEDLINE_ENV`` (``development`` or ``production``)."""

    postgres: PostgresSettings
    kafka: KafkaSettings
    connect: ConnectSettings
    cassandra: CassandraSettings
    redis: RedisSettings
    stack: StackSettings
    web: WebSettings
    pipeline: PipelineSettings
    reads: ReadSettings = field(default_factory=ReadSettings)
    stream: StreamSettings = field(default_factory=StreamSettings)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    rate: RateLimitSettings = field(default_factory=RateLimitSettings)
    env: str = "development"

    def require_production_ready(self, uses: tuple[str, ...] = ("app",)) -> None:
        """Refuse, in one line naming the setting, to run production on development secrets.

        Outside production the development defaults are fine (the local stack needs no
        configuration); in production a default, empty or short cursor secret would let
        anyone forge cursors, and the default database passwords are public in this repo.
        ``uses`` names the database roles whose passwords this process holds: ``app`` (the
        web and the pipeline, which also sign cursors), ``owner`` (migrations), and
        ``replication`` (the roles step that sets Debezium's login): a process is never
        asked for a password it does not need.
        """
        if self.env != "production":
            return
        if "app" in uses:
            secrets = {
                "FEEDLINE_CURSOR_SECRET": self.reads.cursor_secret,
                "FEEDLINE_CURSOR_SECRET_PREVIOUS": self.reads.cursor_secret_previous or None,
            }
            for name, value in secrets.items():
                if value is None:
                    continue
                if value == DEV_CURSOR_SECRET or len(value.encode()) < MIN_SECRET_BYTES:
                    raise ConfigError(
                        f"{name} must be set to a secret of at least {MIN_SECRET_BYTES} bytes "
                        "in production (FEEDLINE_ENV=production)"
                    )
            if not self.web.ops_allow_remote and not _loopback(self.web.ops_host):
                raise ConfigError(
                    "FEEDLINE_OPS_HOST must be a loopback address in production (readiness, "
                    "actors and metrics are unauthenticated); set FEEDLINE_OPS_ALLOW_REMOTE=1 "
                    "if a private network guards it (FEEDLINE_ENV=production)"
                )
        pg = self.postgres
        passwords = {
            "app": ("FEEDLINE_PG_PASSWORD", pg.password, DEV_PG_PASSWORD),
            "owner": ("FEEDLINE_PG_OWNER_PASSWORD", pg.owner_password, DEV_PG_PASSWORD),
            "replication": (
                "FEEDLINE_PG_REPLICATION_PASSWORD",
                pg.replication_password,
                DEV_PG_REPLICATION_PASSWORD,
            ),
        }
        for role in uses:
            name, value, default = passwords[role]
            if value in ("", default, DEV_PG_PASSWORD):
                raise ConfigError(
                    f"{name} must be set (not empty, not a development default) "
                    "in production (FEEDLINE_ENV=production)"
                )


def _loopback(host: str) -> bool:
    """Tell whether ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load() -> Settings:
    """Build the settings from the environment (FEEDLINE_* variables)."""
    topology = _topology()
    root_var = Path(_env("FEEDLINE_VAR_DIR", str(ROOT / "var"))).resolve()
    # A cluster keeps its data, logs and pid files apart from the single-node stack's.
    var_dir = root_var if topology == "single" else root_var / topology
    env = _env("FEEDLINE_ENV", "development")
    if env not in ("development", "production"):
        raise ConfigError(f"FEEDLINE_ENV must be development or production, got {env!r}")
    settings = Settings(
        postgres=PostgresSettings(
            host=_env("FEEDLINE_PG_HOST", "127.0.0.1"),
            port=_int("FEEDLINE_PG_PORT", 5432),
            database=_env("FEEDLINE_PG_DATABASE", "feedline"),
            user=_env("FEEDLINE_PG_USER", "feedline_app"),
            password=_env("FEEDLINE_PG_PASSWORD", DEV_PG_PASSWORD),
            owner_user=_env("FEEDLINE_PG_OWNER_USER", "feedline"),
            owner_password=_env("FEEDLINE_PG_OWNER_PASSWORD", DEV_PG_PASSWORD),
            replication_user=_env("FEEDLINE_PG_REPLICATION_USER", "feedline_replication"),
            replication_password=_env(
                "FEEDLINE_PG_REPLICATION_PASSWORD", DEV_PG_REPLICATION_PASSWORD
            ),
            pool_min=_int("FEEDLINE_PG_POOL_MIN", 1),
            pool_max=_int("FEEDLINE_PG_POOL_MAX", 8),
            connect_timeout_s=_int("FEEDLINE_PG_CONNECT_TIMEOUT_S", 3),
            statement_timeout_ms=_int("FEEDLINE_PG_STATEMENT_TIMEOUT_MS", 5000),
        ),
        kafka=KafkaSettings(
            bootstrap=_bootstrap("FEEDLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            topic_prefix=_env("FEEDLINE_TOPIC_PREFIX", "feedline"),
            partitions=_int("FEEDLINE_TOPIC_PARTITIONS", 6),
            replication_factor=_int("FEEDLINE_TOPIC_REPLICATION", 1),
            min_insync_replicas=_int("FEEDLINE_TOPIC_MIN_ISR", 1),
            retention_ms=_int("FEEDLINE_TOPIC_RETENTION_MS", 7 * 24 * 3600 * 1000),
            group_id=_env("FEEDLINE_KAFKA_GROUP", "feedline-pipeline"),
            dlq_topic=_env("FEEDLINE_DLQ_TOPIC", "feedline.dlq"),
            session_timeout_ms=_int("FEEDLINE_KAFKA_SESSION_TIMEOUT_MS", 6000),
        ),
        connect=ConnectSettings(
            urls=_list("FEEDLINE_CONNECT_URL", "http://127.0.0.1:8083"),
            connector_name=_env("FEEDLINE_CONNECTOR_NAME", "feedline-postgres"),
            slot_name=_env("FEEDLINE_SLOT_NAME", "feedline_slot"),
            poll_interval_ms=_int("FEEDLINE_CONNECT_POLL_MS", 50),
        ),
        cassandra=CassandraSettings(
            hosts=_list("FEEDLINE_CASSANDRA_HOSTS", "127.0.0.1"),
            port=_int("FEEDLINE_CASSANDRA_PORT", 9042),
            keyspace=_env("FEEDLINE_CASSANDRA_KEYSPACE", "feedline"),
            replication=_env(
                "FEEDLINE_CASSANDRA_REPLICATION",
                "{'class': 'SimpleStrategy', 'replication_factor': 1}",
            ),
            consistency=_choice(
                "FEEDLINE_CASSANDRA_CONSISTENCY", CONSISTENCY_LEVELS, any_case=True
            ),
            local_dc=_env("FEEDLINE_CASSANDRA_LOCAL_DC", ""),
            speculative_delay_s=_float("FEEDLINE_CASSANDRA_SPECULATIVE_DELAY_S", 0.0),
        ),
        redis=RedisSettings(url=_env("FEEDLINE_REDIS_URL", "redis://127.0.0.1:6379/0")),
        stack=StackSettings(
            topology=topology,
            var_dir=var_dir,
            lib_dir=root_var / "lib",
            m2_repo=Path(_env("FEEDLINE_M2_REPO", str(Path.home() / ".m2" / "repository"))),
            java_home=_env("FEEDLINE_JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64"),
            kafka_heap=_env("FEEDLINE_KAFKA_HEAP", "512m"),
            connect_heap=_env("FEEDLINE_CONNECT_HEAP", "512m"),
            cassandra_heap=_env("FEEDLINE_CASSANDRA_HEAP", "1G"),
            kafka_controller_port=_int("FEEDLINE_KAFKA_CONTROLLER_PORT", 9093),
            start_timeout_s=_float("FEEDLINE_START_TIMEOUT_S", 120.0),
            cassandra_storage_port=_int("FEEDLINE_CASSANDRA_STORAGE_PORT", 7000),
            cassandra_jmx_port=_int("FEEDLINE_CASSANDRA_JMX_PORT", 7199),
            cassandra_commitlog=_choice("FEEDLINE_CASSANDRA_COMMITLOG", ("group", "periodic")),
            jvm_timer_slack_us=_bounded("FEEDLINE_JVM_TIMER_SLACK_US", 300, 0, MAX_TIMER_SLACK_US),
        ),
        web=WebSettings(
            host=_env("FEEDLINE_WEB_HOST", "127.0.0.1"),
            port=_int("FEEDLINE_WEB_PORT", 8000),
            max_body_bytes=_int("FEEDLINE_MAX_BODY_BYTES", 16 * 1024),
            pipeline_health_url=_env("FEEDLINE_PIPELINE_HEALTH_URL", "http://127.0.0.1:8001"),
            ops_host=_env("FEEDLINE_OPS_HOST", "127.0.0.1"),
            ops_port=_int("FEEDLINE_OPS_PORT", 8002),
            ops_allow_remote=_env("FEEDLINE_OPS_ALLOW_REMOTE", "0") == "1",
            workers=_int("FEEDLINE_WEB_WORKERS", 3),
            threads=_int("FEEDLINE_WEB_THREADS", 1),
            metrics_dir=_env("FEEDLINE_METRICS_DIR", ""),
        ),
        pipeline=PipelineSettings(
            health_host=_env("FEEDLINE_PIPELINE_HOST", "127.0.0.1"),
            health_port=_int("FEEDLINE_PIPELINE_PORT", 8001),
            max_in_flight_per_partition=_int("FEEDLINE_MAX_IN_FLIGHT", 1000),
            batch_max_size=_int("FEEDLINE_BATCH_MAX_SIZE", 200),
            write_linger_s=_float("FEEDLINE_WRITE_LINGER_S", 0.0),
            write_concurrency=_int("FEEDLINE_WRITE_CONCURRENCY", 64),
            read_concurrency=_int("FEEDLINE_READ_CONCURRENCY", 16),
            expansion_chunk=_int("FEEDLINE_EXPANSION_CHUNK", PipelineSettings.expansion_chunk),
            commit_interval_s=_float("FEEDLINE_COMMIT_INTERVAL_S", 1.0),
            drain_timeout_s=_float("FEEDLINE_DRAIN_TIMEOUT_S", 20.0),
            retry_backoff_max_s=_float("FEEDLINE_RETRY_BACKOFF_MAX_S", 30.0),
            retry_budget_s=_float("FEEDLINE_RETRY_BUDGET_S", 300.0),
            parked_retry_s=_float("FEEDLINE_PARKED_RETRY_S", 60.0),
            backfill_window_s=_int("FEEDLINE_BACKFILL_WINDOW_S", 7 * 24 * 3600),
            feed_max=_int("FEEDLINE_FEED_MAX", 800),
            feed_trim_slack=_float("FEEDLINE_FEED_TRIM_SLACK", 0.1),
            pull_threshold=_int("FEEDLINE_PULL_THRESHOLD", PipelineSettings.pull_threshold),
            pull_hysteresis=_float("FEEDLINE_PULL_HYSTERESIS", 0.8),
            fault_injection=_env("FEEDLINE_FAULT_INJECTION", "0") == "1",
        ),
        env=env,
        reads=ReadSettings(
            cursor_secret=_env("FEEDLINE_CURSOR_SECRET", DEV_CURSOR_SECRET),
            cursor_secret_previous=_env("FEEDLINE_CURSOR_SECRET_PREVIOUS", ""),
            feed_ttl_s=_int("FEEDLINE_FEED_TTL_S", 900),
            list_ttl_s=_int("FEEDLINE_LIST_TTL_S", 300),
            object_ttl_s=_int("FEEDLINE_OBJECT_TTL_S", 600),
            negative_ttl_s=_int("FEEDLINE_NEGATIVE_TTL_S", 30),
            redis_timeout_s=_float("FEEDLINE_REDIS_TIMEOUT_S", 0.05),
            cassandra_timeout_s=_float("FEEDLINE_CASSANDRA_READ_TIMEOUT_S", 2.0),
            cassandra_concurrency=_bounded("FEEDLINE_CASSANDRA_READ_CONCURRENCY", 64, 1, 2048),
            near_cache_size=_int("FEEDLINE_NEAR_CACHE_SIZE", 20_000),
            near_cache_pages=_int("FEEDLINE_NEAR_CACHE_PAGES", 5_000),
            near_cache_max_age_s=_float("FEEDLINE_NEAR_CACHE_MAX_AGE_S", 10.0),
            token_cache_ttl_s=_float("FEEDLINE_TOKEN_CACHE_TTL_S", 60.0),
            token_revoked_within_s=_float("FEEDLINE_TOKEN_REVOKED_WITHIN_S", 1.0),
        ),
        stream=StreamSettings(
            host=_env("FEEDLINE_STREAM_HOST", "127.0.0.1"),
            port=_int("FEEDLINE_STREAM_PORT", 8003),
            heartbeat_s=_float("FEEDLINE_STREAM_HEARTBEAT_S", 15.0),
            send_timeout_s=_float("FEEDLINE_STREAM_SEND_TIMEOUT_S", 10.0),
            max_connections=_int("FEEDLINE_STREAM_MAX_CONNECTIONS", 20_000),
            max_age_s=_float("FEEDLINE_STREAM_MAX_AGE_S", 600.0),
            read_threads=_int("FEEDLINE_STREAM_READ_THREADS", 8),
        ),
        accounts=AccountSettings(
            token_ttl_s=_int("FEEDLINE_TOKEN_TTL_S", 30 * 24 * 3600),
            argon2_time_cost=_int("FEEDLINE_ARGON2_TIME_COST", 2),
            argon2_memory_kib=_int("FEEDLINE_ARGON2_MEMORY_KIB", 19 * 1024),
            argon2_parallelism=_int("FEEDLINE_ARGON2_PARALLELISM", 1),
        ),
        rate=RateLimitSettings(
            enabled=_env("FEEDLINE_RATE_ENABLED", "1") != "0",
            signup=_rate("FEEDLINE_RATE_SIGNUP", RateLimitSettings.signup),
            login=_rate("FEEDLINE_RATE_LOGIN", RateLimitSettings.login),
            failed_auth=_rate("FEEDLINE_RATE_FAILED_AUTH", RateLimitSettings.failed_auth),
            posts=_rate("FEEDLINE_RATE_POSTS", "120/minute"),
            comments=_rate("FEEDLINE_RATE_COMMENTS", "120/minute"),
            likes=_rate("FEEDLINE_RATE_LIKES", "300/minute"),
            follows=_rate("FEEDLINE_RATE_FOLLOWS", "300/minute"),
            negative_token_ttl_s=_float("FEEDLINE_RATE_NEGATIVE_TOKEN_TTL_S", 60.0),
            negative_token_size=_int("FEEDLINE_RATE_NEGATIVE_TOKEN_SIZE", 10_000),
            trusted_proxies=_networks("FEEDLINE_RATE_TRUSTED_PROXIES"),
            redis_url=_env("FEEDLINE_RATE_REDIS_URL", ""),
            redis_timeout_s=_float("FEEDLINE_RATE_REDIS_TIMEOUT_S", 0.05),
        ),
    )
    kafka = settings.kafka
    if kafka.min_insync_replicas > kafka.replication_factor:
        # Every acks=all write (Connect's, the dead letters') would fail: not enough replicas.
        raise ConfigError(
            f"FEEDLINE_TOPIC_MIN_ISR ({kafka.min_insync_replicas}) must not exceed"
            f" FEEDLINE_TOPIC_REPLICATION ({kafka.replication_factor})"
        )
    if settings.web.ops_port == settings.web.port:
        # PortDispatch tells the ops listener by its port: one port must not serve both.
        raise ConfigError("FEEDLINE_OPS_PORT must differ from FEEDLINE_WEB_PORT")
    return settings
