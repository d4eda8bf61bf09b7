"""The factory: one registered strategy per source table, unknown tables refused."""

from __future__ import annotations

import pytest

from feedline.errors import AdaptError
from feedline.strategies.decode import COLUMNS
from feedline.strategies.factory import SchemaAdapterStrategyFactory
from feedline.strategies.users import UsersStrategy


def test_every_source_table_has_its_strategy():
    factory = SchemaAdapterStrategyFactory()
    assert factory.tables == tuple(sorted(COLUMNS))
    for table in COLUMNS:
        assert factory.for_table(table).table == table


def test_unknown_table_is_an_adapt_error():
    with pytest.raises(AdaptError, match="user_tokens"):
        SchemaAdapterStrategyFactory().for_table("user_tokens")


def test_registering_a_table_twice_is_refused():
    factory = SchemaAdapterStrategyFactory()
    with pytest.raises(ValueError, match="already registered"):
        factory.register(UsersStrategy())


def test_a_factory_can_be_built_from_a_subset():
    assert SchemaAdapterStrategyFactory((UsersStrategy,)).tables == ("users",)
