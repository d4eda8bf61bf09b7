"""Rows from ``named_rows`` are the driver's named tuples, with the class made once."""

from __future__ import annotations

from cassandra.query import named_tuple_factory

from feedline.cassandra import named_rows


def test_rows_equal_the_drivers_and_reuse_one_class():
    cols = ["user_id", "created_at", "shard_id"]
    first = named_rows(cols, [(1, 10, 100), (2, 20, 200)])
    second = named_rows(cols, [(3, 30, 300)])
    assert first == named_tuple_factory(cols, [(1, 10, 100), (2, 20, 200)])
    assert (first[1].user_id, first[1].shard_id) == (2, 200)
    assert type(second[0]) is type(first[0])
    assert second[0]._fields == ("user_id", "created_at", "shard_id")


def test_awkward_column_names_are_cleaned_as_the_driver_does():
    cols = ["[applied]", "count", "system.release_version"]
    rows = named_rows(cols, [(True, 3, "4.1")])
    again = named_rows(cols, [(False, 0, "5.0")])
    assert rows[0]._fields == named_tuple_factory(cols, [(True, 3, "4.1")])[0]._fields
    assert tuple(again[0]) == (False, 0, "5.0")


def test_an_empty_result_is_empty_and_the_next_one_still_names_its_columns():
    cols = ["only_in_this_test"]
    assert named_rows(cols, []) == []
    assert named_rows(cols, [(7,)])[0].only_in_this_test == 7


def test_an_empty_result_makes_no_class(monkeypatch):
    """The driver's factory makes a class even for no rows (~40 us): not called for none."""
    import feedline.cassandra as cassandra_module

    made = []

    def counting_factory(colnames, rows):
        made.append(tuple(colnames))
        return named_tuple_factory(colnames, rows)

    monkeypatch.setattr(cassandra_module, "named_tuple_factory", counting_factory)
    for _ in range(3):
        assert named_rows(["never_seen_with_rows"], []) == []
    assert made == []
