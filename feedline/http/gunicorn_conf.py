"""Configure gunicorn from Feedline's settings.

Run: ``gunicorn -c python:feedline.http.gunicorn_conf 'feedline.http.app:get_app()'``.
The access log records the request line, status, size and time, never headers, so the
``Authorization`` bearer token is not logged.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from gunicorn.glogging import Logger

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


class AccessLogger(Logger):
    """Build only the access-log atoms the format names, not gunicorn's every one.

    gunicorn's ``atoms()`` copies every request header, response header and environ entry
    into the dict (and its ``SafeAtoms`` escapes each of them) for any format: ~40 of the
    ~60 us an access-log line cost per request here (in a loop, same line written). The
    lines are the same; a format naming any other atom gets gunicorn's full set back.
    """

    SLIM = frozenset("hrsbM")

    def atoms(self, resp: object, req: object, environ: dict, request_time: object) -> dict:
        if not self._slim():
            return super().atoms(resp, req, environ, request_time)
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
            "s": status,
            "b": str(sent) if sent is not None else "-",
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
        }

    def _slim(self) -> bool:
        fmt = self.cfg.access_log_format
        if getattr(self, "_slim_for", None) != fmt:  # the format can change on a reload
            self._slim_for = fmt
            self._slim_ok = set(re.findall(r"%\((.*?)\)", fmt)) <= self.SLIM
        return self._slim_ok


logger_class = AccessLogger
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
