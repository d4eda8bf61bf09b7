"""Answer liveness on the public port and readiness, with per-dependency detail, on ops.

Kubernetes' split: ``GET /health`` on the API port says only that the process serves
(no probes, nothing an anonymous caller could use to stall workers or learn the
topology); ``GET /health/ready`` on the internal ops port runs each dependency's probe.
Probe results are cached for ``ttl_s`` per process, so a burst of readiness calls costs one
probe round per period, and errors are reported as the exception's class name only (an
exception's text may carry hosts, ports or SQL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import falcon

from feedline.http import spec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """A named probe that returns when the dependency is usable and raises otherwise.

    A non-critical check (the Redis cache: reads go on without it) makes the status
    "degraded" but keeps the answer 200, so a load balancer does not drop a serving worker.
    """

    name: str
    probe: Callable[[], None]
    critical: bool = True


class Liveness:
    """``GET /health``: 200 while the process serves requests; no dependency is probed."""

    openapi = {
        "get": spec.operation(
            "Liveness: the process serves requests (dependency detail is on the ops port)",
            {"200": spec.json_response("Alive", spec.ref("Liveness"))},
            public=True,
        )
    }

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Readiness:
    """``GET /health/ready``: 200 unless a critical check fails (503); names failures."""

    def __init__(self, checks: Sequence[Check], ttl_s: float = 1.5):
        self._checks = list(checks)
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, dict] | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        results = self.results()
        healthy = all(result["ok"] for result in results.values())
        serving = all(results[c.name]["ok"] for c in self._checks if c.critical)
        resp.status = falcon.HTTP_200 if serving else falcon.HTTP_503
        resp.media = {"status": "ok" if healthy else "degraded", "checks": results}

    def results(self) -> dict:
        """Return every check's result, probing at most once per ``ttl_s`` (one prober)."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._ttl:
                self._cached = (now, {check.name: _run(check) for check in self._checks})
            return self._cached[1]


def _run(check: Check) -> dict:
    started = time.perf_counter()
    try:
        check.probe()
    except Exception as exc:
        logger.warning("health check %s failed: %s", check.name, exc)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
