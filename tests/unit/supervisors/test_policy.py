"""Check the pure pieces: which siblings restart, backoff delays, the restart window."""

from feedline.supervisors import Backoff, Intensity, Restart, Strategy
from feedline.supervisors.policy import RestartWindow
from tests.unit.supervisors.fakes import FakeClock


def test_strategies_pick_siblings_in_start_order():
    order = ["a", "b", "c"]
    assert Strategy.ONE_FOR_ONE.affected(order, "b") == ["b"]
    assert Strategy.ONE_FOR_ALL.affected(order, "b") == ["a", "b", "c"]
    assert Strategy.REST_FOR_ONE.affected(order, "b") == ["b", "c"]


def test_restart_policies():
    assert Restart.PERMANENT.restarts_after(failed=False)
    assert Restart.TRANSIENT.restarts_after(failed=True)
    assert not Restart.TRANSIENT.restarts_after(failed=False)
    assert not Restart.TEMPORARY.restarts_after(failed=True)


def test_backoff_is_exponential_and_bounded():
    backoff = Backoff(initial=0.5, factor=3.0, maximum=4.0)
    assert [backoff.delay(n) for n in range(4)] == [0.5, 1.5, 4.0, 4.0]


def test_restart_window_forgets_restarts_older_than_the_period():
    clock = FakeClock()
    window = RestartWindow(Intensity(max_restarts=2, period=5.0), clock)
    assert window.record() and window.record()
    clock.now += 5.0
    assert window.count() == 0
    assert window.record() and window.record()
    assert not window.record()
