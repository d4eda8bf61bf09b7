"""The Procfile's app processes, run by honcho in the background and tracked by pid."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from feedline.errors import StackError
from feedline.settings import ROOT, Settings
from feedline.stack import procs
from feedline.stack.layout import Layout

READY_TIMEOUT_S = 60.0  # gunicorn retries a taken port for ~5 s before giving up


def _paths(settings: Settings) -> tuple[Path, Path]:
    lay = Layout.of(settings.stack)
    return lay.pid("honcho"), lay.log("app")


def pid(settings: Settings) -> int | None:
    return procs.running(_paths(settings)[0], _env_file(settings))


def up(settings: Settings) -> None:
    """Start ``honcho start`` on the Procfile unless it runs; fail in one line if it dies."""
    pid_file, log = _paths(settings)
    if pid(settings):
        print(f"app        running  honcho pid {procs.read_pid(pid_file)}, log {log}")
        return
    web = settings.web
    if procs.port_open(web.host, web.port):
        raise StackError("app", f"port {web.port} on {web.host} is taken", str(log))
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1")
    # The stack's env file in argv marks the process as ours (see procs.owned).
    argv = [f"{bindir}/honcho", "start", "-f", str(ROOT / "Procfile"), "-d", str(ROOT)]
    argv += ["-e", str(_env_file(settings))]
    child = procs.spawn(argv, log, pid_file, cwd=ROOT, env=env)
    _wait_web(settings, child, log)
    print(f"app        running  honcho pid {child} (web on http://{_web(settings)}), log {log}")


def _env_file(settings: Settings) -> Path:
    return settings.stack.var_dir / ".env"


def _wait_web(settings: Settings, child: int, log: Path) -> None:
    """Wait for the web port; honcho stops every process when one exits, so watch honcho."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not procs.port_open(settings.web.host, settings.web.port):
        if not procs.alive(child):
            _paths(settings)[0].unlink(missing_ok=True)
            raise StackError("app", "honcho exited: an app process failed to start", str(log))
        if time.monotonic() > deadline:
            raise StackError("app", f"web not listening after {READY_TIMEOUT_S:.0f} s", str(log))
        time.sleep(0.2)


def _web(settings: Settings) -> str:
    return f"{settings.web.host}:{settings.web.port}"


def down(settings: Settings) -> None:
    """SIGTERM honcho (it stops its children), SIGKILL after a bound."""
    pid_file, _ = _paths(settings)
    found = pid(settings)
    if found:
        procs.stop(found, signal.SIGTERM, 15.0)
        print("app        stopped")
    pid_file.unlink(missing_ok=True)
