"""Start, watch and stop the benchmark's own server processes, and read their memory.

Each process runs in its own session so that stopping it (SIGTERM, SIGKILL after a
bound) reaches exactly its tree and nothing a developer started. Resident memory comes
from /proc (VmRSS summed over the process and its descendants: gunicorn's master and
workers, the pipeline's single process).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class BenchProcess:
    """One child process (gunicorn or pipeline) with a log file and a port to wait for."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, port: int):
        self.name, self.argv, self.env, self.log, self.port = name, argv, env, log, port
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> BenchProcess:
        if port_open(self.port):
            raise RuntimeError(f"{self.name}: port {self.port} is taken")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name}: port {self.port} not open in {timeout}s")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the process group, SIGKILL it if it outlives ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(10)

    @contextlib.contextmanager
    def paused(self):
        """SIGSTOP the process group for the block, SIGCONT after (even on error)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def rss_bytes(self) -> int:
        return tree_rss(self.proc.pid) if self.proc and self.proc.poll() is None else 0

    def cpu_s(self) -> float:
        """CPU seconds used so far by the process and its live descendants (workers)."""
        return tree_cpu_s(self.proc.pid) if self.proc and self.proc.poll() is None else 0.0


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_s(pid: int, reaped: bool = False) -> float:
    """utime + stime of ``pid`` (and with ``reaped``, of its exited, waited-for children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime + cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    tree, found, stack = _children(), [], [pid]
    while stack:
        p = stack.pop()
        found.append(p)
        stack.extend(tree.get(p, ()))
    return found


def tree_cpu_s(pid: int, reaped: bool = False) -> float:
    """CPU seconds of ``pid`` and all its descendants; with ``reaped``, also of those that
    exited meanwhile (a PostgreSQL backend per connection, a recycled gunicorn worker),
    which the kernel adds to the parent that waited for them."""
    return sum(_cpu_s(p, reaped) for p in _tree(pid))


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    return sum(_rss(p) for p in _tree(pid))
