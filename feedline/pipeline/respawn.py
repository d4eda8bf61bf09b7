"""Restart the pipeline process when it exits non-zero: a process-level supervisor.

The root supervisor exits the process when it gives up (restart intensity exceeded), on
the assumption that something outside restarts it. systemd does (Restart=on-failure);
honcho does not: it stops every process of the Procfile when one exits. So the Procfile
runs the pipeline under this loop, which restarts it with exponential backoff, forwards
SIGTERM/SIGINT to it, and exits with its code once asked to stop.

The worker never outlives the loop: it is started with ``PR_SET_PDEATHSIG`` (Linux), so
if the loop dies, even by SIGKILL, the kernel sends the worker SIGTERM and it stops
gracefully (drain, commit, leave the group) instead of consuming on, unsupervised and
out of reach of ``make down``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def respawn(cmd: list[str], max_delay_s: float = 30.0, healthy_after_s: float = 60.0) -> int:
    """Run ``cmd`` until it exits 0 or a signal asks us to stop; return its last code."""
    state: dict[str, Any] = {"child": None, "stopping": None, "signalled": None}

    def signal_child() -> None:
        """Pass the stop signal on to the current child, once per child."""
        child = state["child"]
        if child is None or child is state["signalled"] or child.poll() is not None:
            return
        state["signalled"] = child
        child.send_signal(state["stopping"])

    def forward(signum: int, _frame: Any) -> None:
        state["stopping"] = signum
        signal_child()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    delay = 1.0
    while True:
        started = time.monotonic()
        state["child"] = subprocess.Popen(cmd, preexec_fn=die_with_parent(os.getpid()))
        # A signal that came after the last `stopping` check, but before the new child was
        # in state["child"], was forwarded to the previous one (or none): pass it on now.
        if state["stopping"] is not None:
            signal_child()
        code = state["child"].wait()
        if state["stopping"] is not None or code == 0:
            return code
        if time.monotonic() - started > healthy_after_s:
            delay = 1.0
        logger.error("pipeline exited with %d; restarting in %.0fs", code, delay)
        time.sleep(delay)
        if state["stopping"] is not None:
            return code
        delay = min(delay * 2, max_delay_s)


def die_with_parent(parent: int, sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the child get ``sig`` when ``parent`` dies.

    Runs in the forked child before exec: ``prctl(PR_SET_PDEATHSIG)`` survives the exec,
    and a parent that died before the prctl (the child was already re-parented) is caught
    by comparing the parent pid afterwards. None where prctl does not exist (not Linux).
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # libc, already loaded
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec
