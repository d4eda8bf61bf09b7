"""Prove children start in spec order, stop in reverse, and a failed start is reported."""

import pytest

from feedline.supervisors import Backoff, ChildStartError
from tests.unit.supervisors.fakes import (
    Timers,
    ref_of,
    replaced,
    start_root,
    supervisor_spec,
    worker,
)


def test_children_start_in_order_and_stop_in_reverse(journal):
    inner = supervisor_spec("inner", [worker(journal, "x"), worker(journal, "y")])
    root = start_root([worker(journal, "a"), inner, worker(journal, "b")])

    assert journal.events("start") == ["a", "x", "y", "b"]
    root.stop(block=True, timeout=5)

    assert journal.events("stop") == ["b", "y", "x", "a"]


def test_a_child_that_cannot_start_fails_the_tree_start(journal):
    children = [
        worker(journal, "a"),
        worker(journal, "b", kwargs={"start_failures": [True]}),
        worker(journal, "c"),
    ]

    with pytest.raises(ChildStartError, match="root"):
        start_root(children)

    assert journal.events("start") == ["a"]
    assert journal.events("stop") == ["a"]


def test_a_child_that_fails_to_restart_is_retried_with_growing_backoff(journal):
    timers = Timers()
    flaky = worker(journal, "a", kwargs={"start_failures": [False, True, True]})
    root = start_root([flaky], backoff=Backoff(initial=0.1), call_later=timers)
    old = ref_of(root, "a")

    old.tell("crash")

    assert replaced(root, "a", old).ask("ping") == "a"
    assert journal.events("start") == ["a", "a"]  # two failed starts in between
    assert timers.delays == [0.1, 0.2, 0.4]
