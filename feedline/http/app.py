"""Build the Feedline WSGI apps: ``create_app(deps)`` (the API), ``create_ops_app(deps)``
(readiness, actors, metrics) for tests, and ``get_app()`` for gunicorn.

gunicorn calls ``feedline.http.app:get_app()`` in each worker after the fork; nothing here
connects at import time (the PostgreSQL pool, the Redis client and the Cassandra session
all connect on first use, inside the worker). gunicorn listens on two sockets, the public
API port and the ops port (loopback by default); :class:`PortDispatch` sends each
connection to the app of the socket that accepted it, so operations endpoints are never
reachable through the API port whatever the path looks like.
"""

from __future__ import annotations

import dataclasses
import urllib.request

import falcon

from feedline.connector.register import state as connector_state
from feedline.db import Database
from feedline.http import error_handlers
from feedline.http.auth import AuthMiddleware
from feedline.http.deps import Deps
from feedline.http.health import Check
from feedline.http.metrics import MetricsMiddleware
from feedline.http.openapi import OpenApi
from feedline.http.ratelimit import RateLimiter
from feedline.http.revocations import Revocations
from feedline.http.routes import OPS_ROUTES, ROUTES
from feedline.http.security_headers import SecurityHeaders
from feedline.http.token_cache import TokenCache
from feedline.http.validation import IdConverter
from feedline.readmodel.model import read_model
from feedline.settings import Settings, load


def create_app(deps: Deps) -> falcon.App:
    """Wire middleware, error handling and every route in ``ROUTES`` to ``deps``."""
    if deps.reads is None:
        deps.reads = read_model(deps.settings, deps.db)
    if deps.tokens is None:
        reads = deps.settings.reads
        bound = reads.token_revoked_within_s
        deps.tokens = TokenCache(
            reads.token_cache_ttl_s,
            reads.token_cache_size,
            bound,
            Revocations(deps.settings.redis.url, bound),
        )
    limiter = RateLimiter.from_settings(deps.settings)  # after auth: per-user limits need it
    auth = AuthMiddleware(deps.db, tokens=deps.tokens, limiter=limiter)
    app = falcon.App(middleware=[MetricsMiddleware(), SecurityHeaders(), auth, limiter])
    app.router_options.converters["id"] = IdConverter
    error_handlers.install(app)
    routes = [(template, factory(deps)) for template, factory in ROUTES]
    for template, resource in routes:
        app.add_route(template, resource)
    app.add_route("/openapi.json", OpenApi(routes))
    return app


def create_ops_app(deps: Deps) -> falcon.App:
    """Wire the operations routes (no bearer auth: the ops port is not public)."""
    app = falcon.App(middleware=[SecurityHeaders()])
    error_handlers.install(app)
    for template, factory in OPS_ROUTES:
        app.add_route(template, factory(deps))
    return app


class PortDispatch:
    """Serve ``ops`` to connections accepted on ``ops_port``, ``public`` to all others.

    gunicorn hands each request the accepted client socket (``gunicorn.socket``); its local
    port is the listener's. Anything else (no socket, another port) gets the public app:
    the ops app is only ever reached through its own listener.
    """

    def __init__(self, public: falcon.App, ops: falcon.App, ops_port: int):
        self._public = public
        self._ops = ops
        self._ops_port = ops_port

    def __call__(self, environ: dict, start_response: object) -> object:
        sock = environ.get("gunicorn.socket")
        try:
            port = sock.getsockname()[1] if sock is not None else None
        except (OSError, IndexError, TypeError):
            port = None
        app = self._ops if port == self._ops_port else self._public
        return app(environ, start_response)


def web_database(settings: Settings) -> Database:
    """Build a worker's PostgreSQL pool, keeping at least one connection per thread open.

    psycopg2's pool closes a returned connection beyond ``pool_min``: under gthread with
    ``pool_min`` below the threads, every request that overlapped another would open a new
    connection (a backend fork and a SCRAM exchange) instead of reusing one.
    """
    pg = settings.postgres
    return Database(dataclasses.replace(pg, pool_min=max(pg.pool_min, settings.web.threads)))


def get_app() -> PortDispatch:
    """Build both apps from the environment's settings (the gunicorn entry point)."""
    settings = load()
    settings.require_production_ready()
    db = web_database(settings)
    reads = read_model(settings, db)
    checks = [
        Check("cassandra", reads.store.ping),
        # Reads go on without Redis (from Cassandra): "degraded", but still 200.
        Check("redis", reads.cache.ping, critical=False),
        # Writes go on without change capture or the pipeline; feeds only lag: degraded.
        Check("change_capture", lambda: _connector_running(settings), critical=False),
        Check("pipeline", lambda: _pipeline_up(settings), critical=False),
    ]
    deps = Deps(settings=settings, db=db, reads=reads, checks=checks)
    return PortDispatch(create_app(deps), create_ops_app(deps), settings.web.ops_port)


def _connector_running(settings: Settings) -> None:
    """Raise unless the Debezium connector and its task run (Kafka Connect's REST API)."""
    state = connector_state(settings)
    if state != "RUNNING":
        raise RuntimeError(f"connector {settings.connect.connector_name}: {state}")


def _pipeline_up(settings: Settings) -> None:
    """Raise unless the pipeline process answers on its health port."""
    url = settings.web.pipeline_health_url.rstrip("/") + "/health"
    with urllib.request.urlopen(url, timeout=2.0) as resp:  # noqa: S310 (settings URL)
        resp.read()
