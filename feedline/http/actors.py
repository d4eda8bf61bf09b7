"""``GET /health/actors``: the pipeline's live actor tree, reached through the web API.

The tree lives in the pipeline process (its own port, default 8001); the web API only
relays it, so operators need one address. An unreachable pipeline is a 503 with a JSON
error that says so, not a hang: the request to it is bounded by a short timeout.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import falcon

logger = logging.getLogger(__name__)

TIMEOUT_S = 3.0


class PipelineActors:
    """Relay the pipeline's ``/health/actors`` report."""

    def __init__(self, pipeline_url: str):
        self._url = pipeline_url.rstrip("/") + "/health/actors"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            with urllib.request.urlopen(self._url, timeout=TIMEOUT_S) as answer:  # noqa: S310
                resp.media = json.loads(answer.read())
        except (OSError, ValueError) as exc:
            logger.warning("pipeline health unreachable at %s: %s", self._url, exc)
            raise falcon.HTTPServiceUnavailable(
                title="Pipeline unreachable",
                description=f"the pipeline process did not answer at {self._url}",
            ) from exc
