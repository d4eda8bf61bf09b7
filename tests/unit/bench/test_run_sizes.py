"""``bench.run --size NAME=VALUE``: a bad value is a one-line error, never a traceback."""

from __future__ import annotations

import pytest

from bench.context import Sizes
from bench.run import _override


def test_sizes_are_typed_like_the_defaults():
    sizes = _override(Sizes(), ["stream_rates=50,150", "cpu_writes=900"])
    assert sizes.stream_rates == (50, 150)
    assert sizes.cpu_writes == 900


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("stream_rates=", "give at least one value"),  # crashed at max() of no rates
        ("stream_rates=a,1", "not a comma-separated list of integers"),
        ("cpu_writes=many", "not a number"),
        ("no_such=1", "no size called 'no_such'"),
        ("__doc__=1", "no size called '__doc__'"),
        ("stream_rates=100,0", "above zero"),
        ("cpu_writes=-5", "above zero"),
    ],
)
def test_a_bad_value_is_one_clear_error(pair, message):
    with pytest.raises(SystemExit, match=message):
        _override(Sizes(), [pair])
