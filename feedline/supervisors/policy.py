"""Define how a supervisor reacts to a death: which siblings, how often, how soon."""

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Strategy(StrEnum):
    """Choose which children restart together when one dies (OTP's strategies)."""

    ONE_FOR_ONE = "one_for_one"  # only the dead child
    ONE_FOR_ALL = "one_for_all"  # every child
    REST_FOR_ONE = "rest_for_one"  # the dead child and those started after it

    def affected(self, order: list[str], dead: str) -> list[str]:
        """Return the ids to restart, in start order, when child `dead` died."""
        if self is Strategy.ONE_FOR_ONE:
            return [dead]
        if self is Strategy.ONE_FOR_ALL:
            return list(order)
        return order[order.index(dead) :]


@dataclass(frozen=True)
class Intensity:
    """Allow at most `max_restarts` restarts within `period` seconds before giving up."""

    max_restarts: int = 3
    period: float = 5.0


@dataclass(frozen=True)
class Backoff:
    """Wait `initial * factor**n` seconds (at most `maximum`) before the n-th recent restart."""

    initial: float = 0.1
    factor: float = 2.0
    maximum: float = 5.0

    def delay(self, recent_restarts: int) -> float:
        """Return the pause before the next restart, growing with recent restarts."""
        return min(self.maximum, self.initial * self.factor**recent_restarts)


class RestartWindow:
    """Count restarts in a sliding window, to know when a supervisor should give up."""

    def __init__(self, intensity: Intensity, clock: Callable[[], float]) -> None:
        self._intensity = intensity
        self._clock = clock
        self._times: deque[float] = deque()

    def count(self) -> int:
        """Return how many restarts happened within the last period."""
        horizon = self._clock() - self._intensity.period
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        return len(self._times)

    def record(self) -> bool:
        """Record a restart now; return False if that exceeds the intensity."""
        self._times.append(self._clock())
        return self.count() <= self._intensity.max_restarts


CallLater = Callable[[float, Callable[[], None]], object]
"""Run a callable after a delay in seconds; injectable so tests need not sleep."""


def call_later(delay: float, fn: Callable[[], None]) -> threading.Timer:
    """Run `fn` after `delay` seconds on a daemon timer thread, never blocking the caller."""
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()
    return timer
