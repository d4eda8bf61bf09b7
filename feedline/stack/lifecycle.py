"""Bring the stack up, report on it, and take it down: ``feedline stack up|down|status|clean``.

``up`` starts the slow JVMs first and does the quick work (PostgreSQL, its migrations, Redis)
while they boot; every wait is bounded. Services already running (by pid file) are left
alone, so a second ``up`` only re-checks: it is a fast no-op.
"""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from feedline import migrate
from feedline.connector import register, topics
from feedline.errors import StackError
from feedline.settings import Settings
from feedline.stack import app, install, procs
from feedline.stack.base import Context, Service
from feedline.stack.jvm import Cassandra, Connect, Kafka
from feedline.stack.layout import Layout
from feedline.stack.postgres import Postgres
from feedline.stack.redis import Redis

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stack:
    """The services by kind; a replicated kind has one service per node."""

    postgres: Postgres
    redis: Redis
    kafka: list[Kafka]
    connect: list[Connect]
    cassandra: list[Cassandra]

    @classmethod
    def of(cls, settings: Settings) -> Stack:
        ctx = Context(settings, Layout.of(settings.stack))
        nodes = len(Kafka(ctx).addresses()), len(Connect(ctx).addresses())
        return cls(
            Postgres(ctx), Redis(ctx),
            [Kafka(ctx, i) for i in range(nodes[0])],
            [Connect(ctx, i) for i in range(nodes[1])],
            [Cassandra(ctx, i) for i in range(len(settings.cassandra.hosts))],
        )  # fmt: skip

    def kinds(self) -> list[list[Service]]:
        """The services by kind, in start order (stopped in reverse)."""
        return [[self.postgres], [self.redis], [*self.kafka], [*self.connect], [*self.cassandra]]

    def all(self) -> list[Service]:
        """Every service, in start order (stopped in reverse)."""
        return [svc for kind in self.kinds() for svc in kind]


def services(settings: Settings) -> list[Service]:
    """Every service, in start order (stopped in reverse)."""
    return Stack.of(settings).all()


def up(settings: Settings) -> None:
    """Install what is missing, start what is not running, wait for all, print where."""
    t0 = time.monotonic()
    stack = Stack.of(settings)
    pg, redis, svcs = stack.postgres, stack.redis, stack.all()
    lay = pg.ctx.lay
    lay.make_dirs()
    install.ensure_all(settings, lay)
    todo = [s for s in svcs if s.pid() is None]
    for svc in todo:
        svc.check_ports_free()
    timeout = settings.stack.start_timeout_s
    # Slowest first, so they boot in parallel. Of a cluster's Cassandra nodes only the seed
    # now: the others join once it answers (started all at once on 2 cores beside the other
    # JVMs, a starved node was seen dropping out of gossip for ~3 s).
    seed, *joiners = stack.cassandra
    for svc in (seed, *stack.kafka, redis, pg):
        _start(svc, todo)
    if pg not in todo:
        pg.bootstrap()  # roles and grants (start() does it too): idempotent, ~20 ms
    _migrate("postgres", migrate.migrate_postgres, settings.postgres, pg)
    redis.wait_ready(timeout)
    for kafka in stack.kafka:
        kafka.wait_ready(timeout)
    topics.ensure_topics(settings, timeout, str(stack.kafka[0].log))
    for connect in stack.connect:
        _start(connect, todo)
    if joiners:
        seed.wait_ready(timeout)
        for svc in joiners:
            _start(svc, todo)
    for connect in stack.connect:
        connect.wait_ready(timeout)
    log = str(stack.connect[0].log)
    register.register(settings, timeout, log)
    register.wait_running(settings, timeout, log)
    pg.drop_legacy_replication(register.registered_user(settings))
    for cassandra in stack.cassandra:
        cassandra.wait_ready(timeout)
    if joiners:
        wait_ring(stack.cassandra, timeout)
    _migrate("cassandra", migrate.migrate_cassandra, settings.cassandra, seed)
    for svc in svcs:
        print(f"{svc.name:<11} {_state(svc):<8} {svc.where():<36} log {svc.log}")
    print(f"connector  {settings.connect.connector_name}: RUNNING")
    started = ", ".join(s.name for s in todo) or "nothing (already running)"
    print(f"stack up in {time.monotonic() - t0:.1f} s; started {started}")


def wait_ring(nodes: list[Cassandra], timeout: float) -> None:
    """Wait until every Cassandra node has every other one in its ring and up.

    A node opens CQL before it has necessarily heard of the others. In CI, the migration's
    driver picked a node that had not heard of the seed yet, dropped the other two hosts,
    created the keyspace on a ring of one and failed its first LOCAL_QUORUM statement
    (``alive_replicas 1``). On a restart a node knows the others at once but marks them
    up only as gossip reaches them. Asking each node alone is what tells (``sees``).
    """
    for node in nodes:
        _wait_sees(node, {n.host for n in nodes if n is not node}, timeout)


def _wait_sees(node: Cassandra, others: set[str], timeout: float) -> None:
    lacks: str | None = None

    def sees_all() -> bool:
        nonlocal lacks
        lacks = node.sees(others)
        return lacks is None

    try:
        procs.wait_for(
            sees_all, service=node.name, what=f"in one ring with {', '.join(sorted(others))}",
            timeout=timeout, log=node.log, pid=node.pid(),
        )  # fmt: skip
    except StackError as exc:
        raise StackError(node.name, f"{exc.cause} (last: {lacks})", exc.log) from None


def _start(svc: Service, todo: list[Service]) -> None:
    if svc in todo:
        svc.start()
        logger.info("%s starting", svc.name)


def _migrate(store, run, store_settings, svc: Service) -> None:
    try:
        for version in run(store_settings):
            logger.info("applied %s", version)
    except migrate.MigrationError as exc:
        raise StackError(store, f"migration failed: {exc}", str(svc.log)) from None


def _state(svc: Service) -> str:
    pid = svc.pid()
    if pid is None:
        return "stopped"
    return "running" if svc.ready() else "starting"


def status(settings: Settings) -> bool:
    """Print each service's state and the connector's; True when everything is healthy."""
    healthy = True
    for svc in services(settings):
        state = _state(svc)
        healthy &= state == "running"
        pid = svc.pid()
        print(f"{svc.name:<11} {state:<8} pid {pid or '-':<8} {svc.where()}")
    app_pid = app.pid(settings)
    print(f"{'app':<11} {'running' if app_pid else 'stopped':<8} pid {app_pid or '-':<8} honcho")
    conn = register.state(settings)
    healthy &= conn == "RUNNING"
    print(f"connector  {settings.connect.connector_name}: {conn}")
    return healthy


def down(settings: Settings) -> None:
    """Stop the app processes, then every service we started, in reverse order, by pid."""
    app.down(settings)
    stopped = []
    for kind in reversed(Stack.of(settings).kinds()):
        # A kind's nodes stop together: Kafka's last broker, alone, would have no
        # controller quorum to shut down cleanly with, and wait out its stop bound.
        with ThreadPoolExecutor(len(kind)) as pool:
            done = list(pool.map(lambda svc: svc.stop(), kind))
        stopped += [svc.name for svc, was in zip(kind, done, strict=True) if was]
    for name in stopped:  # printed after stopping: a closed stdout must not stop the stopping
        print(f"{name:<11} stopped")


def clean(settings: Settings) -> None:
    """Stop the stack, drop the slot and publication, and wipe data, logs and pid files.

    The downloaded jars (var/lib) are kept: they are a cache, not state.
    """
    stack = Stack.of(settings)
    pg = stack.postgres
    app.down(settings)
    for connect in stack.connect:
        connect.stop()
    if pg.pid() is not None:
        drop_replication(settings, pg)
    down(settings)
    lay = pg.ctx.lay
    for path in (lay.data, lay.logs, lay.run, lay.conf):
        shutil.rmtree(path, ignore_errors=True)
    if pg.home != lay.var:
        shutil.rmtree(pg.home, ignore_errors=True)
    print(f"wiped {lay.data}, {lay.logs}, {lay.run}, {lay.conf}")


def drop_replication(settings: Settings, pg: Postgres) -> None:
    """Drop Debezium's slot and the publication, which outlive the connector.

    As the superuser (peer auth over the private socket): the application role may do
    neither, and the owner may not drop a replication slot.
    """
    import psycopg2
    from psycopg2 import sql

    c = settings.connect
    try:
        conn = pg.admin(settings.postgres.database)
    except psycopg2.Error:
        logger.warning("postgres unreachable: slot %s not dropped", c.slot_name)
        return
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s AND NOT active",
                (c.slot_name,),
            )
            drop = sql.SQL("DROP PUBLICATION IF EXISTS {}")
            cur.execute(drop.format(sql.Identifier(c.publication_name)))
    finally:
        conn.close()
