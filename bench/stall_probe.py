"""How much this machine stretches a fixed piece of Python work: CPU time of a ~1 ms unit.

Why: on the bench VM a fixed unit of pure Python work now and then takes about ten times
its usual CPU time, in bursts every second or two, even with every service stopped (so
the host, not this stack: most likely it takes the vCPU away and the guest still charges
that time to the running thread). A request's tail can be no better than its CPU cost
stretched by that factor, so the reads bench measures it *alongside* each cache-miss run
(the factor changes from minute to minute) and reports it beside the p99 it bounds. CPU
time, not wall time, so waiting for a busy core does not count; the probe itself uses ~5%
of one core. It runs in its own process (no GIL sharing with the load generator):
``python -m bench.stall_probe SECONDS`` prints JSON.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.stats import percentile

UNIT_LOOPS = 12_000  # ~1 ms of CPU on this machine
PAUSE_S = 0.02
ROOT = Path(__file__).resolve().parent.parent


def _unit() -> int:
    total = 0
    for i in range(UNIT_LOOPS):
        total += i * i
    return total


def sample(seconds: float) -> dict[str, float | int | None]:
    """Time the unit every ``PAUSE_S`` for ``seconds``: CPU-time p50/p99 in ms."""
    cpu_ms = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.thread_time()
        _unit()
        cpu_ms.append((time.thread_time() - start) * 1000)
        time.sleep(PAUSE_S)
    return {"n": len(cpu_ms), "p50_ms": percentile(cpu_ms, 50), "p99_ms": percentile(cpu_ms, 99)}


@contextlib.contextmanager
def alongside(seconds: float) -> Iterator[dict[str, float | int | None]]:
    """Sample in a child process while the block runs; the dict is filled when it ends."""
    argv = [sys.executable, "-m", "bench.stall_probe", str(seconds)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    found: dict[str, float | int | None] = {}
    try:
        yield found
    finally:
        try:
            out, _ = proc.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode == 0:
            found.update(json.loads(out))


if __name__ == "__main__":
    print(json.dumps(sample(float(sys.argv[1]))))
