"""A process-wide count of actor restarts, so in-flight work knows when to be re-sent.

Any restart may have dropped messages that sat in the dead actor's inbox. Rather than
tracking which event sat where, every in-flight event remembers the epoch at which it was
handed out; when the epoch has moved on and the event is still not done, it is handed out
again. Writes are idempotent, so re-sending more than was lost is harmless.
"""

from __future__ import annotations

import threading


class RestartEpoch:
    """A thread-safe counter bumped by supervisors on every child restart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    @property
    def value(self) -> int:
        return self._value

    def bump(self, *_args: object) -> int:
        """Advance the epoch; accepts and ignores callback arguments."""
        with self._lock:
            self._value += 1
            return self._value
