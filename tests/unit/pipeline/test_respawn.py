"""The respawn loop with real processes: signals reach the current worker, and a worker
never outlives the loop.

Each test runs the loop in a process of its own (it installs signal handlers) with a tiny
worker command instead of the pipeline, so it needs no stack.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from feedline.stack.procs import alive

# Run the loop with a Popen that first starts a worker that fails at once, then receives
# SIGTERM exactly between the loop's `stopping` check and the start of the next worker.
LATE_SIGTERM = textwrap.dedent(
    """
    import os, signal, subprocess, sys
    from feedline.pipeline import respawn

    real_popen, calls = subprocess.Popen, []

    def popen(cmd, **kwargs):
        if cmd != ["worker"]:
            return real_popen(cmd, **kwargs)
        calls.append(cmd)
        if len(calls) == 1:
            return real_popen([sys.executable, "-c", "raise SystemExit(3)"], **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # handled now, before the new worker exists
        child = real_popen([sys.executable, "-c", "import time; time.sleep(30)"], **kwargs)
        print("worker", child.pid, flush=True)
        return child

    respawn.subprocess.Popen = popen
    print("exit", respawn.respawn(["worker"]), flush=True)
    """
)

LOOP = textwrap.dedent(
    """
    import sys
    from feedline.pipeline.respawn import respawn

    respawn([sys.executable, "-c", "import time; time.sleep(60)"])
    """
)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_a_sigterm_just_before_a_restart_stops_the_new_worker_too() -> None:
    loop = subprocess.Popen([sys.executable, "-c", LATE_SIGTERM], stdout=subprocess.PIPE, text=True)
    try:
        out, _ = loop.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        loop.kill()
        out, _ = loop.communicate()
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    worker = int(lines["worker"])
    try:
        assert lines.get("exit") == str(-signal.SIGTERM), f"the loop never stopped: {out!r}"
        assert _wait(lambda: not alive(worker), 5), "the new worker was never stopped"
    finally:
        _kill(worker)


def test_a_worker_exits_when_its_respawn_loop_is_sigkilled() -> None:
    loop = subprocess.Popen([sys.executable, "-c", LOOP])
    worker = None
    try:
        assert _wait(lambda: _children(loop.pid), 10), "the loop started no worker"
        worker = _children(loop.pid)[0]
        time.sleep(0.2)  # past the worker's start-up: only its parent's death may stop it

        loop.kill()
        loop.wait(5)

        assert _wait(lambda: not alive(worker), 5), f"worker {worker} outlived its loop"
    finally:
        loop.kill()
        if worker is not None:
            _kill(worker)
