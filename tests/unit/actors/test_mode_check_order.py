"""A writer takes at most one mode check per author into a pass (pure logic).

Two users events of one author in one batch used to run their mode checks side by side,
both reading the same old decision: the chaos test of hybrid fan-out once ended with a
settled push for an author with 6 followers (the older event's "push at 1 follower"
stood; the newer "4 followers" read the old pull and changed nothing).
"""

from __future__ import annotations

from feedline.actors.cassandra_writer import _one_mode_check_per_author
from feedline.actors.messages import Record, Work
from feedline.strategies.base import ModeCheck, Plan


def users_event(offset: int, author: int, followers: int) -> Work:
    plan = Plan(mutations=(), expansions=(ModeCheck(author, followers, offset),))
    return Work(Record("feedline.public.users", 0, offset, b"k", b"v"), plan, None)


def other(offset: int) -> Work:
    return Work(Record("feedline.public.likes", 0, offset, b"k", b"v"), Plan(), None)


def test_a_second_mode_check_of_an_author_waits_for_the_next_pass():
    works = [users_event(1, 7, 1), other(2), users_event(3, 8, 5), users_event(4, 7, 4)]
    taken, later = _one_mode_check_per_author(works)
    assert [w.record.offset for w in taken] == [1, 2, 3]
    assert [w.record.offset for w in later] == [4]
    again, rest = _one_mode_check_per_author(later)
    assert [w.record.offset for w in again] == [4] and rest == []


def test_events_without_mode_checks_are_never_held_back():
    works = [other(1), other(2), users_event(3, 7, 2)]
    assert _one_mode_check_per_author(works) == (works, [])


def test_only_the_oldest_check_of_an_author_runs_whatever_the_list_order():
    """A failed check due for its retry comes after the fresh events in a pass's list."""
    fresh, retried = users_event(9, 7, 4), users_event(5, 7, 1)
    taken, later = _one_mode_check_per_author([fresh, retried])
    assert taken == [retried] and later == [fresh]


def test_a_check_waits_while_an_older_one_of_its_author_waits_for_its_retry():
    """Review finding: the older check failed before writing its decision; the newer one
    must not decide against the stale standing decision meanwhile."""
    works = [users_event(9, 7, 4), users_event(10, 8, 4)]
    taken, later = _one_mode_check_per_author(works, waiting={7})
    assert [w.record.offset for w in taken] == [10]
    assert [w.record.offset for w in later] == [9]
