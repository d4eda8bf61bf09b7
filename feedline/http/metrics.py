"""Count and time requests by route template and status, and serve them to Prometheus.

Under gunicorn each worker is a process with its own counters. gunicorn_conf.py therefore
switches prometheus-client to multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set before
the workers import this module) and ``settings.web.metrics_dir`` tells ``/metrics`` to
aggregate every worker's files. Without it (tests, one process) the default registry is used.
"""

from __future__ import annotations

import time

import falcon
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

REQUESTS = Counter("feedline_http_requests", "HTTP requests handled", ["method", "route", "status"])
LATENCY = Histogram(
    "feedline_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


# Label values for the request method: any other (made-up) method counts as OTHER, so a
# client cannot mint new time series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """Return ``method`` if it is a known HTTP method, else ``OTHER``."""
    return method if method in METHODS else "OTHER"


class MetricsMiddleware:
    """Record every request, labelled by route template and known method (bounded cardinality)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, ok: bool
    ) -> None:
        started = getattr(req.context, "started", None)
        if started is None:
            return
        route = req.uri_template or "unmatched"
        method = method_label(req.method)
        REQUESTS.labels(method, route, str(resp.status_code)).inc()
        LATENCY.labels(method, route).observe(time.perf_counter() - started)


class Metrics:
    """``GET /metrics``: Prometheus text exposition."""

    def __init__(self, multiprocess_dir: str = ""):
        self._multiprocess_dir = multiprocess_dir

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        registry = REGISTRY
        if self._multiprocess_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self._multiprocess_dir)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(registry)
