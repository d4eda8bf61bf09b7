"""Prove the restart limit, the backoff between restarts, and escalation up the tree."""

from feedline.errors import SupervisorEscalation
from feedline.supervisors import Backoff, ChildState, Intensity
from feedline.supervisors.policy import call_later
from tests.unit.supervisors.fakes import (
    FakeClock,
    Timers,
    info_of,
    ref_of,
    replaced,
    start_root,
    supervisor_spec,
    wait_until,
    worker,
)


def crash_and_wait_restart(root, child_id):
    old = ref_of(root, child_id)
    old.tell("crash")
    return replaced(root, child_id, old)


def test_more_restarts_than_allowed_within_the_period_escalates(journal, escalations):
    clock = FakeClock()
    root = start_root(
        [worker(journal, "w")],
        intensity=Intensity(max_restarts=2, period=10.0),
        clock=clock,
        on_escalate=escalations.append,
    )
    crash_and_wait_restart(root, "w")
    clock.now += 9.0
    crash_and_wait_restart(root, "w")  # 2 restarts within 10 s: still allowed
    assert escalations == []

    ref_of(root, "w").tell("crash")

    wait_until(lambda: escalations)
    assert isinstance(escalations[0], SupervisorEscalation)
    assert "boom in w" in str(escalations[0])
    wait_until(lambda: not root.is_alive())
    assert journal.events("stop") == []  # w died by crashing; nothing left to stop


def test_restarts_spread_beyond_the_period_never_escalate(journal, escalations):
    clock = FakeClock()
    root = start_root(
        [worker(journal, "w")],
        intensity=Intensity(max_restarts=2, period=10.0),
        clock=clock,
        on_escalate=escalations.append,
    )

    for _ in range(5):
        crash_and_wait_restart(root, "w")
        clock.now += 10.5

    assert escalations == []
    assert info_of(root, "w").restarts == 5


def test_backoff_grows_exponentially_up_to_its_bound(journal):
    timers = Timers()
    root = start_root(
        [worker(journal, "w")],
        backoff=Backoff(initial=0.1, factor=2.0, maximum=0.3),
        call_later=timers,
    )

    for _ in range(4):
        crash_and_wait_restart(root, "w")

    assert timers.delays == [0.1, 0.2, 0.3, 0.3]


def test_child_waits_in_restarting_state_until_its_backoff_ends(journal):
    timers = Timers(manual=True)
    root = start_root([worker(journal, "w")], call_later=timers)
    old = ref_of(root, "w")

    old.tell("crash")

    wait_until(lambda: timers.pending)
    assert info_of(root, "w").state == ChildState.RESTARTING
    assert ref_of(root, "w") is None
    timers.fire()
    assert replaced(root, "w", old).ask("ping") == "w"


def test_real_timer_restarts_after_the_backoff(journal):
    root = start_root([worker(journal, "w")], backoff=Backoff(initial=0.01), call_later=call_later)
    old = ref_of(root, "w")

    old.tell("crash")

    assert replaced(root, "w", old).ask("ping") == "w"


def test_a_supervisor_that_gives_up_is_restarted_by_its_parent(journal, escalations):
    inner = supervisor_spec("inner", [worker(journal, "w")], intensity=Intensity(0, 5.0))
    root = start_root([worker(journal, "a"), inner], on_escalate=escalations.append)
    old_inner, old_a = ref_of(root, "inner"), ref_of(root, "a")

    ref_of(old_inner, "w").tell("crash")

    new_inner = replaced(root, "inner", old_inner)
    assert not old_inner.is_alive()
    assert ref_of(new_inner, "w").ask("ping") == "w"
    assert ref_of(root, "a") == old_a  # one_for_one at the root
    record = info_of(root, "inner")
    assert record.restarts == 1
    assert record.last_error.startswith("SupervisorEscalation: inner: more than 0 restarts")
    assert escalations == []


def test_the_root_giving_up_calls_on_escalate_after_stopping_the_tree(journal, escalations):
    inner = supervisor_spec("inner", [worker(journal, "w")], intensity=Intensity(0, 5.0))
    root = start_root(
        [worker(journal, "a"), inner],
        intensity=Intensity(0, 5.0),
        on_escalate=escalations.append,
    )

    ref_of(ref_of(root, "inner"), "w").tell("crash")

    wait_until(lambda: escalations)
    assert isinstance(escalations[0], SupervisorEscalation)
    assert "inner" in str(escalations[0])
    assert journal.events("stop") == ["a"]  # inner's w crashed; a stopped by the root
    wait_until(lambda: not root.is_alive())
