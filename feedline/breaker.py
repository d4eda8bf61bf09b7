"""A circuit breaker for a dependency that may fail: skip it for a doubling backoff.

Used where a dependency is optional and a dead one must cost nothing per request (the
read path's Redis cache, the rate limiter's Redis counters): after a failure callers skip
it for ``base_s``, doubling up to ``max_s``; when a pause ends, one caller probes and the
others keep skipping until it has answered. ``on_change(failing, exc)`` runs when the
state flips (log lines, gauges), so each user says what the failure means for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def _nothing(failing: bool, exc: BaseException | None) -> None:
    return None


class Breaker:
    """Skip a failing dependency for a doubling backoff; let one caller probe after it."""

    def __init__(
        self,
        base_s: float,
        max_s: float,
        on_change: Callable[[bool, BaseException | None], None] = _nothing,
    ):
        self._base, self._max = base_s, max_s
        self._on_change = on_change
        self._backoff = base_s
        self._open_until = 0.0
        self.failing = False

    def allow(self) -> bool:
        if not self.failing:
            return True
        now = time.monotonic()
        if now < self._open_until:
            return False
        self._open_until = now + self._backoff  # this caller probes; the others keep skipping
        return True

    def success(self) -> None:
        if self.failing:
            self.failing = False
            self._backoff = self._base
            self._on_change(False, None)

    def failure(self, exc: BaseException) -> None:
        if not self.failing:
            self.failing = True
            self._on_change(True, exc)
        self._open_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self._max)
