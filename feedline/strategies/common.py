"""Share the op dispatch and mutation building that every table strategy needs.

A strategy subclasses ``TableStrategy`` and implements ``upsert`` (create, snapshot read,
update) and ``delete``; tombstones plan nothing because the delete before them already
did the work. Building mutations through ``mutation`` checks the bind arity against the
statement registry and derives the batching partition from the table's primary key, so
no strategy computes either by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feedline import statements
from feedline.errors import AdaptError
from feedline.strategies.base import ChangeEvent, Mutation, Plan


def mutation(name: str, params: Sequence[Any], timestamp: int) -> Mutation:
    """Build a ``Mutation`` of the named statement, validated against the registry."""
    stmt = statements.get(name)
    stmt.bind_values(params, timestamp)
    return Mutation(name, tuple(params), timestamp, stmt.partition(params))


class TableStrategy:
    """Dispatch one table's events by op; subclasses stay pure functions of the event."""

    table: str = ""

    def plan(self, event: ChangeEvent) -> Plan:
        """Return the plan for ``event``; a row missing what the plan needs is an AdaptError."""
        if event.table != self.table:
            raise AdaptError(f"{type(self).__name__} got an event of table {event.table!r}")
        try:
            if event.op == "t":
                return Plan()
            if event.op in ("c", "r", "u") and event.after is not None:
                return self.upsert(event)
            if event.op == "d" and event.before is not None:
                return self.delete(event)
        except (KeyError, TypeError, ValueError) as exc:
            raise AdaptError(f"{self.table} {event.op} {event.key}: bad row ({exc!r})") from None
        raise AdaptError(f"{self.table}: cannot plan op {event.op!r} with this before/after")

    def upsert(self, event: ChangeEvent) -> Plan:
        """Plan a create, snapshot read or update (``event.after`` is the new row)."""
        raise NotImplementedError

    def delete(self, event: ChangeEvent) -> Plan:
        """Plan a delete (``event.before`` is the whole old row: REPLICA IDENTITY FULL)."""
        raise NotImplementedError
