"""Prove permanent, transient and temporary children end and restart as their policy says."""

from feedline.supervisors import ChildState, Restart, Strategy
from tests.unit.supervisors.fakes import (
    info_of,
    ref_of,
    replaced,
    start_root,
    wait_until,
    worker,
)


def test_permanent_child_is_restarted_even_after_a_normal_stop(journal):
    root = start_root([worker(journal, "p", restart=Restart.PERMANENT)])
    old = ref_of(root, "p")

    old.tell("exit")

    assert replaced(root, "p", old).ask("ping") == "p"
    assert info_of(root, "p").restarts == 1


def test_transient_child_is_restarted_after_a_crash(journal):
    root = start_root([worker(journal, "t", restart=Restart.TRANSIENT)])
    old = ref_of(root, "t")

    old.tell("crash")

    assert replaced(root, "t", old).ask("ping") == "t"


def test_transient_child_that_stops_normally_stays_stopped(journal):
    root = start_root([worker(journal, "t", restart=Restart.TRANSIENT)])

    ref_of(root, "t").tell("exit")

    wait_until(lambda: info_of(root, "t").state == ChildState.STOPPED)
    assert ref_of(root, "t") is None
    assert journal.events("start") == ["t"]


def test_temporary_child_is_forgotten_not_restarted(journal):
    root = start_root([worker(journal, "tmp", restart=Restart.TEMPORARY)])

    ref_of(root, "tmp").tell("crash")

    wait_until(lambda: info_of(root, "tmp") is None)
    assert journal.events("start") == ["tmp"]


def test_temporary_sibling_is_stopped_but_not_restarted_by_one_for_all(journal):
    children = [worker(journal, "a"), worker(journal, "tmp", restart=Restart.TEMPORARY)]
    root = start_root(children, strategy=Strategy.ONE_FOR_ALL)
    old_a, old_tmp = ref_of(root, "a"), ref_of(root, "tmp")

    old_a.tell("crash")

    replaced(root, "a", old_a)
    assert not old_tmp.is_alive()
    assert info_of(root, "tmp") is None
    assert journal.events("start") == ["a", "tmp", "a"]


def test_on_restart_is_called_for_each_restarted_child(journal):
    restarted = []
    children = [worker(journal, "a"), worker(journal, "b")]
    root = start_root(
        children,
        strategy=Strategy.ONE_FOR_ALL,
        on_restart=lambda supervisor, child: restarted.append((supervisor, child)),
    )
    old = ref_of(root, "b")

    old.tell("crash")

    replaced(root, "b", old)
    wait_until(lambda: len(restarted) == 2)
    assert restarted == [("root", "a"), ("root", "b")]
