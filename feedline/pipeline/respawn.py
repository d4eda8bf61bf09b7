"""Restart the pipeline process when it exits non-zero: a process-level supervisor.

The root supervisor exits the process when it gives up (restart intensity exceeded), on
the assumption that something outside restarts it. systemd does (Restart=on-failure);
honcho does not: it stops every process of the Procfile when one exits. So the Procfile
runs the pipeline under this loop, which restarts it with exponential backoff, forwards
SIGTERM/SIGINT to it, and exits with its code once asked to stop.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from typing import Any

logger = logging.getLogger(__name__)


def respawn(cmd: list[str], max_delay_s: float = 30.0, healthy_after_s: float = 60.0) -> int:
    """Run ``cmd`` until it exits 0 or a signal asks us to stop; return its last code."""
    state: dict[str, Any] = {"child": None, "stopping": False}

    def forward(signum: int, _frame: Any) -> None:
        state["stopping"] = True
        child = state["child"]
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    delay = 1.0
    while True:
        started = time.monotonic()
        state["child"] = subprocess.Popen(cmd)
        code = state["child"].wait()
        if state["stopping"] or code == 0:
            return code
        if time.monotonic() - started > healthy_after_s:
            delay = 1.0
        logger.error("pipeline exited with %d; restarting in %.0fs", code, delay)
        time.sleep(delay)
        if state["stopping"]:
            return code
        delay = min(delay * 2, max_delay_s)
