"""Sample resident memory of the bench web and pipeline processes, phase by phase.

A daemon thread reads /proc every half second while a phase is active; the figures are
the peak RSS under load beside the idle RSS measured right after start (the baseline).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from bench.figures import Figure
from bench.procs import BenchProcess

MIB = 1024 * 1024


class RssSampler:
    def __init__(self, procs: dict[str, BenchProcess], interval: float = 0.5):
        self._procs = procs
        self._interval = interval
        self.idle: dict[str, int] = {}
        self.peaks: dict[tuple[str, str], int] = {}  # (process, phase) -> bytes

    def record_idle(self, procs: dict[str, BenchProcess] | None = None) -> None:
        self.idle.update({name: p.rss_bytes() for name, p in (procs or self._procs).items()})

    @contextlib.contextmanager
    def phase(self, name: str, procs: dict[str, BenchProcess] | None = None) -> Iterator[None]:
        watched = procs or self._procs
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                for proc_name, p in watched.items():
                    key = (proc_name, name)
                    self.peaks[key] = max(self.peaks.get(key, 0), p.rss_bytes())
                stop.wait(self._interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    def figures(self) -> list[Figure]:
        out = []
        for (proc, phase), peak in sorted(self.peaks.items()):
            idle = self.idle.get(proc)
            out.append(
                Figure(
                    f"rss.{proc}.{phase}",
                    f"{proc} RSS, peak during {phase}",
                    round(peak / MIB, 1),
                    "MiB",
                    round(idle / MIB, 1) if idle else None,
                    "idle after start",
                )
            )
        return out
