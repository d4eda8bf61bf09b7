"""How much this machine stretches a fixed piece of Python work: CPU time of a ~1 ms unit.

Why: on the bench VM a fixed unit of pure Python work now and then takes about ten times
its usual CPU time, in bursts every second or two, even with every service stopped (the
host takes the vCPU away and the guest still charges that time to the running thread). A
request's tail can be no better than its CPU cost stretched by that factor, so the reads
bench reports it beside the cache-miss p99 it bounds. Run in its own process (no GIL
sharing with the load generator): ``python -m bench.stall_probe SECONDS`` prints JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.stats import percentile

UNIT_LOOPS = 12_000  # ~1 ms of CPU on this machine
PAUSE_S = 0.01


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


def measure(seconds: float) -> dict[str, float | int | None]:
    """Run ``sample`` in a child process (bounded in time) and return its result."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.stall_probe", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout)


if __name__ == "__main__":
    print(json.dumps(sample(float(sys.argv[1]))))
