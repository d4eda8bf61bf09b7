"""Build the Feedline WSGI app: ``create_app(deps)`` for tests, ``get_app()`` for gunicorn.

gunicorn calls ``feedline.http.app:get_app()`` in each worker after the fork; nothing here
connects at import time (the pool connects on first use).
"""

from __future__ import annotations

import falcon

from feedline.db import Database
from feedline.http import error_handlers
from feedline.http.auth import AuthMiddleware
from feedline.http.deps import Deps
from feedline.http.metrics import MetricsMiddleware
from feedline.http.openapi import OpenApi
from feedline.http.routes import ROUTES
from feedline.http.validation import IdConverter
from feedline.settings import load


def create_app(deps: Deps) -> falcon.App:
    """Wire middleware, error handling and every route in ``ROUTES`` to ``deps``."""
    app = falcon.App(middleware=[MetricsMiddleware(), AuthMiddleware(deps.db)])
    app.router_options.converters["id"] = IdConverter
    error_handlers.install(app)
    routes = [(template, factory(deps)) for template, factory in ROUTES]
    for template, resource in routes:
        app.add_route(template, resource)
    app.add_route("/openapi.json", OpenApi(routes))
    return app


def get_app() -> falcon.App:
    """Build the app from the environment's settings (the gunicorn entry point)."""
    settings = load()
    return create_app(Deps(settings=settings, db=Database(settings.postgres)))
