"""Mirror ``comments`` into ``comments_by_shard``; comment_count comes with the shard update.

A comment id is never reused, so a deleted comment is removed at TERMINAL: no replayed or
late create can bring it back. An update that moves the comment's clustering position
(another shard or created_at; the API never does this) removes the old position at the LSN.
"""

from __future__ import annotations

from typing import Any

from feedline import cache_keys
from feedline import statements as st
from feedline.strategies.base import TERMINAL, ChangeEvent, Mutation, Plan
from feedline.strategies.common import TableStrategy, mutation


def _position(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["shard_id"], row["created_at"], row["id"])


class CommentsStrategy(TableStrategy):
    """Plan comment upserts at the LSN and deletes at TERMINAL."""

    table = "comments"

    def upsert(self, event: ChangeEvent) -> Plan:
        """Upsert the comment; on a move, also remove its old position."""
        row = event.after
        assert row is not None
        params = (*_position(row), row["author_id"], row["body"])
        mutations: list[Mutation] = [mutation(st.UPSERT_COMMENT, params, event.lsn)]
        keys = [cache_keys.comments(row["shard_id"])]
        old = event.before
        if event.op == "u" and old is not None and _position(old) != _position(row):
            mutations.append(mutation(st.DELETE_COMMENT, _position(old), event.lsn))
            keys.append(cache_keys.comments(old["shard_id"]))
        return Plan(mutations=tuple(mutations), invalidations=tuple(dict.fromkeys(keys)))

    def delete(self, event: ChangeEvent) -> Plan:
        """Remove the comment for good (TERMINAL)."""
        row = event.before
        assert row is not None
        return Plan(
            mutations=(mutation(st.DELETE_COMMENT, _position(row), TERMINAL),),
            invalidations=(cache_keys.comments(row["shard_id"]),),
        )
