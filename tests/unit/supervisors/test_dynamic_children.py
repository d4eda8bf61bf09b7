"""Prove children can be added and removed at runtime, as partition consumers will be."""

import pytest

from feedline.supervisors import ChildStartError, StartChild, TerminateChild
from tests.unit.supervisors.fakes import info_of, ref_of, replaced, start_root, worker


def test_started_child_runs_last_in_order_and_is_supervised(journal):
    root = start_root([worker(journal, "a")])

    ref = root.ask(StartChild(worker(journal, "p-0")), timeout=2)

    assert ref.ask("ping") == "p-0"
    assert ref_of(root, "p-0") == ref
    ref.tell("crash")
    assert replaced(root, "p-0", ref).ask("ping") == "p-0"
    root.stop(block=True, timeout=5)
    assert journal.events("stop") == ["p-0", "a"]


def test_duplicate_id_is_refused(journal):
    root = start_root([worker(journal, "a")])

    with pytest.raises(ValueError, match="duplicate"):
        root.ask(StartChild(worker(journal, "a")), timeout=2)


def test_child_that_cannot_start_is_refused_and_not_kept(journal):
    root = start_root([])

    with pytest.raises(ChildStartError):
        root.ask(StartChild(worker(journal, "p", kwargs={"start_failures": [True]})), timeout=2)

    assert info_of(root, "p") is None


def test_terminated_child_is_stopped_gracefully_and_forgotten(journal):
    root = start_root([worker(journal, "a")])
    ref = root.ask(StartChild(worker(journal, "p-1")), timeout=2)
    for _ in range(3):
        ref.tell("queued work")  # processed before the stop, as on a partition revoke

    assert root.ask(TerminateChild("p-1"), timeout=2) is True

    assert not ref.is_alive()
    assert journal.events("stop") == ["p-1"]
    assert ref_of(root, "p-1") is None and info_of(root, "p-1") is None
    assert root.ask(TerminateChild("p-1"), timeout=2) is False


def test_proxy_methods_work_too(journal):
    root = start_root([])
    supervisor = root.proxy()

    ref = supervisor.start_child(worker(journal, "p-2")).get(timeout=2)

    assert supervisor.which_child("p-2").get(timeout=2) == ref
    assert supervisor.terminate_child("p-2").get(timeout=2) is True
