"""What every stack service has: a name, ports, a pid file, a log, start, ready and stop."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from feedline.errors import StackError
from feedline.settings import Settings
from feedline.stack import procs
from feedline.stack.layout import Layout

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Context:
    settings: Settings
    lay: Layout


def url_port(url: str, default: int) -> int:
    return urlsplit(url).port or default


class Service:
    """One local service; subclasses fill in ports(), start() and ready().

    A node of a replicated service (a Cassandra node, a Kafka broker, a Connect worker) is
    a service of its own: its own name (``cassandra-2``), address, pid file, log and data.
    """

    name = ""
    stop_signal = signal.SIGTERM
    stop_timeout = 30.0

    def __init__(self, ctx: Context):
        self.ctx = ctx

    @property
    def host(self) -> str:
        """The loopback address this service listens on (a cluster node has its own)."""
        return HOST

    @property
    def log(self) -> Path:
        return self.ctx.lay.log(self.name)

    @property
    def pid_file(self) -> Path:
        return self.ctx.lay.pid(self.name)

    def ports(self) -> list[int]:
        """The ports it listens on at ``host``."""
        raise NotImplementedError

    def endpoints(self) -> list[tuple[str, int]]:
        """Every (address, port) it listens on."""
        return [(self.host, p) for p in self.ports()]

    @property
    def marker(self) -> Path:
        """A path this service's process names (in its argv, or as its cwd): proof it is
        ours. Each service's own, not the var dir: a cluster's processes run under
        var/cluster and on var/lib's jars, and must never pass for a single node's."""
        raise NotImplementedError

    def pid(self) -> int | None:
        return procs.running(self.pid_file, self.marker)

    def check_ports_free(self) -> None:
        """Refuse to start when another process holds one of our ports."""
        for host, port in self.endpoints():
            if procs.port_open(host, port):
                raise StackError(self.name, f"port {port} on {host} is taken", str(self.log))

    def start(self) -> None:
        raise NotImplementedError

    def ready(self) -> bool:
        return all(procs.port_open(h, p) for h, p in self.endpoints())

    def wait_ready(self, timeout: float) -> None:
        procs.wait_for(
            self.ready,
            service=self.name,
            what="ready",
            timeout=timeout,
            log=self.log,
            pid=self.pid() or procs.read_pid(self.pid_file),
        )

    def stop(self) -> bool:
        """Stop by pid (signal, then SIGKILL after stop_timeout); False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        procs.stop(pid, self.stop_signal, self.stop_timeout)
        self.pid_file.unlink(missing_ok=True)
        return True

    def where(self) -> str:
        return ", ".join(f"{h}:{p}" for h, p in self.endpoints())
