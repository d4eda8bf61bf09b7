"""Prove each strategy restarts exactly the right children, with new refs."""

from feedline.supervisors import Describe, Strategy
from tests.unit.supervisors.fakes import info_of, ref_of, replaced, start_root, worker


def start_abc(journal, strategy):
    root = start_root([worker(journal, n) for n in "abc"], strategy=strategy)
    return root, {n: ref_of(root, n) for n in "abc"}


def test_one_for_one_restarts_only_the_failed_child(journal):
    root, old = start_abc(journal, Strategy.ONE_FOR_ONE)

    old["b"].tell("crash")

    new_b = replaced(root, "b", old["b"])
    assert not old["b"].is_alive()
    assert new_b.ask("ping") == "b"
    assert ref_of(root, "a") == old["a"]
    assert ref_of(root, "c") == old["c"]
    assert journal.events("stop") == []


def test_one_for_all_restarts_every_child_in_order(journal):
    root, old = start_abc(journal, Strategy.ONE_FOR_ALL)

    old["b"].tell("crash")

    new = {n: replaced(root, n, old[n]) for n in "abc"}
    assert not any(ref.is_alive() for ref in old.values())
    assert all(ref.is_alive() for ref in new.values())
    assert journal.events("stop") == ["c", "a"]  # survivors stopped in reverse; b had died
    assert journal.events("start") == ["a", "b", "c", "a", "b", "c"]


def test_rest_for_one_restarts_the_failed_child_and_those_after_it(journal):
    root, old = start_abc(journal, Strategy.REST_FOR_ONE)

    old["b"].tell("crash")

    new_b, new_c = replaced(root, "b", old["b"]), replaced(root, "c", old["c"])
    assert ref_of(root, "a") == old["a"]
    assert not old["b"].is_alive() and not old["c"].is_alive()
    assert new_b.is_alive() and new_c.is_alive()
    assert journal.events("stop") == ["c"]
    assert journal.events("start") == ["a", "b", "c", "b", "c"]


def test_a_late_report_from_a_replaced_child_is_ignored(journal):
    root, old = start_abc(journal, Strategy.ONE_FOR_ALL)

    old["a"].tell("crash")
    old["c"].tell("crash")  # may die before or after a's restart stops it: either way,
    new_c = replaced(root, "c", old["c"])  # c ends up running exactly once

    new_a = replaced(root, "a", old["a"])
    root.ask(Describe(), timeout=2)  # the supervisor has handled every report by now

    assert new_c.ask("ping") == "c" and new_a.ask("ping") == "a"
    assert journal.events("start") == ["a", "b", "c", "a", "b", "c"]
    assert [info_of(root, n).restarts for n in "abc"] == [1, 1, 1]
