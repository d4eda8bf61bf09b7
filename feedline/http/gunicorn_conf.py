"""Configure gunicorn from Feedline's settings.

Run: ``gunicorn -c python:feedline.http.gunicorn_conf 'feedline.http.app:get_app()'``.
The access log records the request line, status, size and time, never headers, so the
``Authorization`` bearer token is not logged.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from feedline.errors import ConfigError
from feedline.settings import load

try:
    _settings = load()
    _settings.require_production_ready()
except ConfigError as _exc:  # one line naming the setting, before any worker starts
    sys.exit(f"feedline web: {_exc}")
_web = _settings.web
_metrics_dir = _web.metrics_dir or str(_settings.stack.var_dir / "web-metrics")

# The API, and the ops listener (readiness, actors, metrics); app.PortDispatch tells them apart.
bind = [f"{_web.host}:{_web.port}", f"{_web.ops_host}:{_web.ops_port}"]
workers = _web.workers
threads = _web.threads
worker_class = "gthread" if _web.threads > 1 else "sync"
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
# Applied by the arbiter before the workers fork and import prometheus-client, which then
# keeps per-process files there; /metrics aggregates them (see feedline.http.metrics).
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={_metrics_dir}", f"FEEDLINE_METRICS_DIR={_metrics_dir}"]


def on_starting(server: object) -> None:
    """Start with no metric files from an earlier run (they would add old counts)."""
    directory = Path(_metrics_dir)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live-gauge files (counters and histograms are kept)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: object) -> None:
    """Send the app's own log records (feedline.*) to stderr beside gunicorn's."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    app_logger = logging.getLogger("feedline")
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    app_logger.propagate = False
