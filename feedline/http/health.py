"""Report liveness and the state of each dependency the web process talks to."""

from __future__ import annotations

import logging
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


class Health:
    """``GET /health``: 200 unless a critical check fails (503); "degraded" names failures."""

    openapi = {
        "get": spec.operation(
            "Liveness and dependency state",
            {
                "200": spec.json_response("Every dependency is up", spec.ref("Health")),
                "503": spec.json_response("Some dependency is down", spec.ref("Health")),
            },
            public=True,
        )
    }

    def __init__(self, checks: Sequence[Check]):
        self._checks = list(checks)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        results = {check.name: _run(check) for check in self._checks}
        healthy = all(result["ok"] for result in results.values())
        serving = all(results[c.name]["ok"] for c in self._checks if c.critical)
        resp.status = falcon.HTTP_200 if serving else falcon.HTTP_503
        resp.media = {"status": "ok" if healthy else "degraded", "checks": results}


def _run(check: Check) -> dict:
    started = time.perf_counter()
    try:
        check.probe()
    except Exception as exc:
        logger.warning("health check %s failed: %s", check.name, exc)
        return {"ok": False, "error": str(exc) or type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
