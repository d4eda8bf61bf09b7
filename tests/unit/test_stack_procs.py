"""procs.spawn gives a child the timer slack asked for, and leaves the caller's as it was."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from feedline.stack import procs


def _own_slack() -> int:
    return int(Path(f"/proc/{threading.get_native_id()}/timerslack_ns").read_text())


def _spawned_slack(tmp_path: Path, us: int) -> int:
    """Spawn a shell whose child prints its own slack; return it."""
    log, pid_file = tmp_path / f"out-{us}.log", tmp_path / f"pid-{us}"
    # The shell's child (cat) reads its own: inherited past exec and fork, as a JVM's threads.
    pid = procs.spawn(["sh", "-c", "cat /proc/self/timerslack_ns"], log, pid_file, tmp_path,
                      timer_slack_us=us)  # fmt: skip
    deadline = time.monotonic() + 10
    while procs.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(log.read_text().split()[0])


def test_a_spawned_process_and_its_children_carry_the_slack(tmp_path: Path) -> None:
    before = _own_slack()
    assert _spawned_slack(tmp_path, 300) == 300_000
    assert _own_slack() == before  # the caller's thread got its own value back


def test_zero_keeps_the_default(tmp_path: Path) -> None:
    assert _spawned_slack(tmp_path, 0) == _own_slack()


def test_the_slack_is_back_after_a_failed_spawn(tmp_path: Path) -> None:
    before = _own_slack()
    with pytest.raises(OSError):
        procs.spawn(["/nonexistent/binary"], tmp_path / "log", tmp_path / "pid", tmp_path,
                    timer_slack_us=500)  # fmt: skip
    assert _own_slack() == before
