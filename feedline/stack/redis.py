"""Redis 7 from the Debian package: a cache, so no persistence (nothing to lose)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from feedline.errors import StackError
from feedline.stack.base import HOST, Service, url_port


class Redis(Service):
    name = "redis"

    def ports(self) -> list[int]:
        return [url_port(self.ctx.settings.redis.url, 6379)]

    @property
    def datadir(self) -> Path:
        return self.ctx.lay.data / "redis"

    @property
    def marker(self) -> Path:
        return self.datadir  # its cwd (a daemonized redis-server rewrites its argv)

    def start(self) -> None:
        data = self.datadir
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            "redis-server", "--port", str(self.ports()[0]), "--bind", HOST,
            "--save", "", "--appendonly", "no", "--dir", str(data),
            "--pidfile", str(self.pid_file), "--logfile", str(self.log), "--daemonize", "yes",
        ]  # fmt: skip
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        if subprocess.run(argv, cwd=data, capture_output=True).returncode:
            raise StackError(self.name, "redis-server failed to start", str(self.log))

    def ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.ports()[0]), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
