"""Start, find and stop processes by pid file, never by name.

A pid file is trusted only while its process is alive (not a zombie) and still belongs to
this stack (its command line or working directory names the service's own config file or
directory), so a recycled pid of some unrelated process, or of the other topology's
service, is never signalled.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from feedline.errors import StackError

logger = logging.getLogger(__name__)


def read_pid(path: Path) -> int | None:
    """Return the pid written on the first line of ``path``, or None."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Tell whether ``pid`` runs; a zombie (state Z) counts as gone, unlike ``kill -0``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def owned(pid: int, marker_path: Path) -> bool:
    """Tell whether ``pid`` is one of ours: ``marker_path`` (a path only that process names)
    is in its argv, or its cwd is under it."""
    marker = str(marker_path)
    try:
        if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            return True
        return os.readlink(f"/proc/{pid}/cwd").startswith(marker)
    except OSError:
        return False


def running(pid_file: Path, marker: Path) -> int | None:
    """Return the live pid recorded in ``pid_file`` if it is ours (see ``owned``), else None."""
    pid = read_pid(pid_file)
    if pid is not None and alive(pid) and owned(pid, marker):
        return pid
    return None


def spawn(
    argv: list[str],
    log: Path,
    pid_file: Path,
    cwd: Path,
    env: dict | None = None,
    timer_slack_us: int = 0,
) -> int:
    """Start ``argv`` detached (own session, output to ``log``) and record its pid.

    ``timer_slack_us`` > 0 gives the process and every thread it makes that timer slack
    (see ``timer_slack``); 0 keeps the kernel's default (50 us).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out, timer_slack(timer_slack_us):
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


_PR_SET_TIMERSLACK, _PR_GET_TIMERSLACK = 29, 30  # <linux/prctl.h>


@contextmanager
def timer_slack(us: int) -> Iterator[None]:
    """Run the block with the calling thread's timer slack at ``us`` microseconds.

    Timer slack is how late the kernel may fire a thread's timed sleeps (futex, nanosleep,
    epoll timeouts); a child forked meanwhile inherits it, keeps it across exec, and passes
    it to every thread it creates. Setting it on this thread around the fork, rather than
    in a ``preexec_fn``, is safe with other threads running; the old value is put back.
    A wake-up by another thread (unpark, a signalled futex, data on a socket) is not
    delayed, only timeouts are; but work left for a thread that is in a timed sleep waits
    for that sleep to end (Cassandra's stages, see jvm.JvmService.timer_slack_us).
    ``us`` 0 changes nothing. It is an optimisation: where the kernel refuses it (a seccomp
    filter, a sandbox), the process starts without it and a warning says so.
    """
    if us <= 0:
        yield
        return
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    old = prctl(_PR_GET_TIMERSLACK, 0, 0, 0, 0)
    if old < 0 or prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(us * 1000), 0, 0, 0) != 0:
        logger.warning("timer slack not set: %s", os.strerror(ctypes.get_errno()))
        yield
        return
    try:
        yield
    finally:
        prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(old), 0, 0, 0)


def stop(pid: int, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Send ``sig`` to ``pid``, wait up to ``timeout``, then SIGKILL; True if it had to kill."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    if _wait_gone(pid, timeout):
        return False
    logger.warning("pid %d still alive after %.0f s: SIGKILL", pid, timeout)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    _wait_gone(pid, 10.0)
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return not alive(pid)


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """Tell whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(
    check: Callable[[], bool],
    *,
    service: str,
    what: str,
    timeout: float,
    log: Path | None,
    pid: int | None = None,
) -> None:
    """Poll ``check`` until it holds; fail fast if ``pid`` dies, and never past ``timeout``."""
    deadline = time.monotonic() + timeout
    where = str(log) if log else None
    while not check():
        if pid is not None and not alive(pid):
            raise StackError(service, f"exited before {what}", where)
        if time.monotonic() > deadline:
            raise StackError(service, f"not {what} after {timeout:.0f} s", where)
        time.sleep(0.2)
