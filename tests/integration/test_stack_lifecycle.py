"""``make down`` leaves nothing behind, and a warm ``make stack-up`` brings it all back.

Collected last (see tests/conftest.py): it stops the shared stack, then restarts it so the
rest of the suite and other developers keep a running stack.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from feedline.connector import register
from feedline.settings import ROOT
from feedline.stack import app, lifecycle, procs

pytestmark = pytest.mark.integration

# A warm start takes ~25 s here (Cassandra ~20 s of it). It was 81-122 s while Cassandra
# re-inserted its whole compaction history on each start (jvm.Cassandra.prepare).
WARM_START_BOUND_S = 60


def _make(target: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", target], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_down_leaves_no_process_then_warm_start(settings, record_property):
    svcs = lifecycle.services(settings)
    pids = {s.name: s.pid() for s in svcs}
    endpoints = [e for s in svcs for e in s.endpoints()]
    assert all(pids.values()), pids
    restart = "up" if app.pid(settings) else "stack-up"  # leave the app as we found it
    try:
        out = _make("down")
        assert out.returncode == 0, out.stderr
        assert [n for n, pid in pids.items() if procs.alive(pid)] == []
        assert [e for e in endpoints if procs.port_open(*e)] == []
    finally:
        t0 = time.monotonic()
        up = _make(restart)
        warm = time.monotonic() - t0
    record_property("warm_start_s", round(warm, 1))
    print(f"warm make {restart}: {warm:.1f} s")
    assert up.returncode == 0, up.stderr
    assert register.state(settings) == "RUNNING"
    assert all(s.pid() for s in svcs)
    assert warm < WARM_START_BOUND_S
