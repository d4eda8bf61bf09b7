"""Send messages to the current incarnation of a supervised actor pool.

A supervisor restarts a failed child with a NEW ref, so a ref captured at start-up goes
stale. The router caches refs by child name and looks a name up again when a tell hits a
dead actor. If the child is still restarting the message is dropped and ``tell`` returns
False: senders never rely on a tell arriving (see PartitionConsumer's redelivery).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import pykka

logger = logging.getLogger(__name__)

Lookup = Callable[[str], Any]  # child name -> pykka.ActorRef or None


class Router:
    """Pick a pool member by a stable hash of a key and tell it a message."""

    def __init__(self, names: Sequence[str], lookup: Lookup, attempts: int = 5):
        if not names:
            raise ValueError("a router needs at least one actor name")
        self._names = tuple(names)
        self._lookup = lookup
        self._attempts = attempts
        self._refs: dict[str, Any] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def name_for(self, key: Hashable) -> str:
        """Return the pool member that handles ``key`` (stable across processes)."""
        digest = zlib.crc32(repr(key).encode())
        return self._names[digest % len(self._names)]

    def tell(self, key: Hashable, message: Any) -> bool:
        """Tell the member for ``key``; return False if no live member took it."""
        return self.tell_name(self.name_for(key), message)

    def tell_name(self, name: str, message: Any) -> bool:
        """Tell the named member, refreshing its ref across a restart."""
        delay = 0.05
        for _ in range(self._attempts):
            ref = self._refs.get(name) or self._refresh(name)
            if ref is not None:
                try:
                    ref.tell(message)
                    return True
                except pykka.ActorDeadError:
                    self._refs.pop(name, None)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        logger.warning("dropped %s for %s: no live actor", type(message).__name__, name)
        return False

    def _refresh(self, name: str) -> Any:
        try:
            ref = self._lookup(name)
        except Exception:  # the supervisor itself may be restarting
            logger.debug("lookup of %s failed", name, exc_info=True)
            return None
        if ref is not None and ref.is_alive():
            self._refs[name] = ref
            return ref
        return None


def tell_quietly(ref: Any, message: Any) -> bool:
    """Tell an actor that may have stopped meanwhile (e.g. a revoked partition's owner).

    Losing such a message is safe by design: an unacknowledged event is re-read by
    whoever owns its partition next.
    """
    try:
        ref.tell(message)
        return True
    except pykka.ActorDeadError:
        logger.debug("%s to a stopped actor dropped", type(message).__name__)
        return False
