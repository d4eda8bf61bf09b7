"""Bundle what the web app needs, so tests can build it from real parts of their choosing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from feedline.db import Database
from feedline.http.health import Check
from feedline.settings import Settings


@dataclass
class Deps:
    """The app's dependencies; each one connects lazily, on first use, never at import."""

    settings: Settings
    db: Database
    redis: Any | None = None
    # The read side (feedline.readmodel.model.ReadModel); create_app builds one if absent.
    reads: Any | None = None
    # In-process bearer token cache (feedline.http.token_cache.TokenCache).
    tokens: Any | None = None
    # Extra /health checks (Redis, Cassandra, Kafka, pipeline) appended by later issues.
    checks: list[Check] = field(default_factory=list)
