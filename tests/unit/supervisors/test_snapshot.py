"""Prove the health snapshot shows the tree, restarts, last errors and stats."""

import threading

from feedline.supervisors import snapshot
from tests.unit.supervisors.fakes import (
    Timers,
    ref_of,
    replaced,
    start_root,
    supervisor_spec,
    wait_until,
    worker,
)


def test_snapshot_shows_the_tree_with_restarts_errors_and_stats(journal):
    inner = supervisor_spec("inner", [worker(journal, "b")])
    root = start_root([worker(journal, "a"), inner])
    for _ in range(3):
        ref_of(root, "a").ask("ping")
    old_b = ref_of(ref_of(root, "inner"), "b")
    old_b.tell("crash")
    replaced(ref_of(root, "inner"), "b", old_b)

    tree = snapshot(root, timeout=1.0)

    assert tree["name"] == "root" and tree["kind"] == "supervisor"
    assert tree["state"] == "running" and tree["strategy"] == "one_for_one"
    a, inner_node = tree["children"]
    assert a["kind"] == "actor" and a["state"] == "running" and a["responsive"]
    assert a["restarts"] == 0 and a["last_error"] is None
    assert a["stats"] == {"messages_processed": 3, "in_flight": 0}
    assert inner_node["kind"] == "supervisor" and inner_node["responsive"]
    (b,) = inner_node["children"]
    assert b["restarts"] == 1
    assert b["last_error"] == "RuntimeError: boom in b"
    assert b["stats"]["messages_processed"] == 0  # a fresh incarnation


def test_a_busy_child_is_marked_unresponsive_within_the_timeout(journal):
    gate = threading.Event()
    root = start_root([worker(journal, "slow", kwargs={"gate": gate}), worker(journal, "ok")])
    ref_of(root, "slow").tell("block")

    tree = snapshot(root, timeout=0.3)
    gate.set()

    slow, ok = tree["children"]
    assert slow["responsive"] is False and slow["state"] == "running"
    assert ok["responsive"] is True


def test_snapshot_of_a_stopped_root_says_so(journal):
    root = start_root([worker(journal, "a")])
    root.stop(block=True, timeout=5)

    tree = snapshot(root, timeout=0.1)

    assert tree["state"] == "stopped" and tree["responsive"] is False


def test_a_child_waiting_for_its_restart_is_shown_restarting(journal):
    timers = Timers(manual=True)
    root = start_root([worker(journal, "a")], call_later=timers)
    ref_of(root, "a").tell("crash")
    wait_until(lambda: timers.pending)

    (a,) = snapshot(root, timeout=0.3)["children"]

    assert a["state"] == "restarting" and a["responsive"] is False
    assert a["last_error"] == "RuntimeError: boom in a" and a["stats"] == {}
