"""Track which offsets of one partition are done, and how far it is safe to commit.

Offsets in a Kafka partition need not be contiguous (compaction, transaction markers), so
the watermark is kept from the offsets actually delivered, never by counting: the
committable position is one past the last delivered offset below which every delivered
offset is done. Committing past an unfinished offset would lose it on a crash (Faust
#312); waiting for offsets that were never delivered would never commit (Faust #378).
"""

from __future__ import annotations


class Watermark:
    """Ordered set of in-flight offsets of one partition with a "done up to" position."""

    def __init__(self) -> None:
        # Insertion-ordered: offset -> done? Offsets are added in increasing order.
        self._offsets: dict[int, bool] = {}
        self._last_added: int | None = None
        self._committable: int | None = None

    @property
    def in_flight(self) -> int:
        """Return how many delivered offsets are not yet committable."""
        return len(self._offsets)

    @property
    def committable(self) -> int | None:
        """Return the next offset to commit (Kafka's convention), or None if none yet."""
        return self._committable

    def add(self, offset: int) -> bool:
        """Start tracking a delivered offset; return False for one already seen (a replay)."""
        if self._last_added is not None and offset <= self._last_added:
            return False
        self._offsets[offset] = False
        self._last_added = offset
        return True

    def mark_done(self, offset: int) -> None:
        """Mark one offset done and advance the committable position past finished ones."""
        if offset in self._offsets:
            self._offsets[offset] = True
            self._advance()

    def pending(self) -> list[int]:
        """Return the delivered offsets that are not done yet, oldest first."""
        return [o for o, done in self._offsets.items() if not done]

    def _advance(self) -> None:
        while self._offsets:
            first = next(iter(self._offsets))
            if not self._offsets[first]:
                return
            del self._offsets[first]
            self._committable = first + 1
