"""Serve the pipeline's live actor tree and metrics on its own port.

A stdlib ThreadingHTTPServer on a daemon thread: the pipeline process has no web
framework to host, and each request only reads state (a tree snapshot asks every actor
with one short deadline, so a stuck actor shows as unresponsive instead of hanging).

    GET  /health          {"status": "ok"}  (the process is up)
    GET  /health/actors   the supervision tree, per-partition offsets and lag, a summary
    GET  /metrics         Prometheus text
    POST /debug/fail?actor=<child id>   crash one actor (only with fault injection on)
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from feedline.actors.messages import InjectFailure
from feedline.pipeline.metrics import PipelineMetrics
from feedline.supervisors import Describe, WhichChild, snapshot

logger = logging.getLogger(__name__)


def actors_report(
    root: Any, metrics: PipelineMetrics | None = None, timeout: float = 1.0
) -> dict[str, Any]:
    """Return the tree plus a one-word status: ok, or degraded with the reasons.

    Dependencies come from the metrics as well as from the actors: an actor blocked
    retrying a dead Cassandra cannot answer, but it has already flagged the outage.
    """
    tree = snapshot(root, timeout=timeout)
    problems = [f"{dep}: down" for dep in _down_dependencies(metrics)] if metrics else []
    _collect_problems(tree, problems)
    return {"status": "degraded" if problems else "ok", "problems": problems, "tree": tree}


def _down_dependencies(metrics: PipelineMetrics) -> list[str]:
    down = []
    for family in metrics.dependency_up.collect():
        for sample in family.samples:
            if sample.value == 0:
                down.append(sample.labels["dependency"])
    return sorted(down)


def _collect_problems(node: dict[str, Any], problems: list[str]) -> None:
    name = node.get("id") or node.get("name") or "root"
    if node.get("state") != "running":
        problems.append(f"{name}: {node.get('state')}")
    elif node.get("responsive") is False:
        problems.append(f"{name}: unresponsive")
    stats = node.get("stats") or {}
    if stats.get("last_write_error"):
        problems.append(f"{name}: cassandra {stats['last_write_error']}")
    if stats.get("redis_up") is False:
        problems.append(f"{name}: redis down")
    if stats.get("kafka_error"):
        problems.append(f"{name}: kafka {stats['kafka_error']}")
    problems.extend(f"{name}: dead letter refused {u}" for u in stats.get("undeliverable", ()))
    parked = stats.get("parked", ())
    problems.extend(f"{name}: parked {p}" for p in parked)
    if stats.get("parked_events", 0) > len(parked):  # health names the first few only
        problems.append(f"{name}: {stats['parked_events'] - len(parked)} more parked events")
    for child in node.get("children", ()):
        _collect_problems(child, problems)


def find_actor(root: Any, child_id: str, timeout: float = 2.0) -> Any:
    """Return the live ref of the child ``child_id`` anywhere in the tree, or None."""
    stack = [root]
    while stack:
        sup = stack.pop()
        ref = sup.ask(WhichChild(child_id), timeout=timeout)
        if ref is not None:
            return ref
        info = sup.ask(Describe(), timeout=timeout)
        stack.extend(c.ref for c in info.children if c.kind == "supervisor" and c.ref)
    return None


class HealthServer:
    """Own the HTTP server thread that reports on the tree under the root supervisor."""

    def __init__(self, host: str, port: int, metrics: PipelineMetrics, fault_injection: bool):
        self._root: Any = None
        handler = _handler(lambda: self._root, metrics, fault_injection)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-server", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self, root: Any) -> HealthServer:
        """Serve the tree under ``root`` (the port is bound already, at construction)."""
        self._root = root
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _handler(
    root: Callable[[], Any], metrics: PipelineMetrics, fault_injection: bool
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/health":
                self._json(200, {"status": "ok"})
            elif path == "/health/actors":
                report = actors_report(root(), metrics)
                self._json(200, report)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
            else:
                self._json(404, {"title": "Not Found", "description": f"no route {path}"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/debug/fail":
                self._json(404, {"title": "Not Found", "description": f"no route {url.path}"})
                return
            if not fault_injection:
                self._json(403, {"title": "Forbidden", "description": "fault injection is off"})
                return
            actor = parse_qs(url.query).get("actor", [""])[0]
            ref = find_actor(root(), actor) if actor else None
            if ref is None:
                self._json(404, {"title": "Not Found", "description": f"no actor {actor!r}"})
                return
            ref.tell(InjectFailure(f"injected failure in {actor}"))
            self._json(202, {"failed": actor})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, default=str).encode()
            self._send(status, "application/json", data)

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            logger.debug("health: " + fmt, *args)

    return Handler
