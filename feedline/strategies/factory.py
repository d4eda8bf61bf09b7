"""Pick the strategy for a source table: the ``SchemaAdapterStrategyFactory``.

Registration is explicit (the ``register`` decorator or ``STRATEGIES``), one strategy class
per source table, so adding a table is one module plus one line here, and an event of a
table nobody registered is a poison event rather than a silent skip.
"""

from __future__ import annotations

from feedline.errors import AdaptError
from feedline.strategies.base import Strategy
from feedline.strategies.comments import CommentsStrategy
from feedline.strategies.followers import FollowersStrategy
from feedline.strategies.likes import LikesStrategy
from feedline.strategies.shards import ShardsStrategy
from feedline.strategies.users import UsersStrategy

STRATEGIES: tuple[type, ...] = (
    UsersStrategy,
    FollowersStrategy,
    ShardsStrategy,
    CommentsStrategy,
    LikesStrategy,
)


class SchemaAdapterStrategyFactory:
    """Map each source table to one (stateless, shareable) strategy instance."""

    def __init__(self, strategies: tuple[type, ...] = STRATEGIES):
        self._by_table: dict[str, Strategy] = {}
        for cls in strategies:
            self.register(cls())

    def register(self, strategy: Strategy) -> Strategy:
        """Register ``strategy`` for its ``table``; a second one for a table is an error."""
        if strategy.table in self._by_table:
            raise ValueError(f"a strategy for {strategy.table!r} is already registered")
        self._by_table[strategy.table] = strategy
        return strategy

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_table))

    def for_table(self, table: str) -> Strategy:
        """Return the strategy for ``table``; an unknown table is a poison event."""
        try:
            return self._by_table[table]
        except KeyError:
            raise AdaptError(f"no strategy for table {table!r} (known: {self.tables})") from None
