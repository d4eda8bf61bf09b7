"""The app processes the failure suite runs itself: gunicorn and pipeline processes.

Each gets free loopback ports and (pipelines) the suite's own consumer group, so the suite
never collides with a developer's ``make up`` on the same stack.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from feedline.supervisors import find_node

GROUP = "feedline-failure-pipeline"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 3.0) -> tuple[int, Any]:
    """GET ``url``; return (status, decoded JSON or text); status 0 if nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, _decode(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())
    except OSError:
        return 0, None


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def parse_metrics(text: str) -> dict[str, float]:
    """Sum Prometheus samples by metric name (labels dropped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


class Pipeline:
    """``python -m feedline.pipeline [--respawn]`` with its own health port."""

    def __init__(self, log: Path, respawn: bool = True, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.respawn = respawn
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Pipeline:
        env = dict(os.environ, FEEDLINE_PIPELINE_PORT=str(self.port), FEEDLINE_KAFKA_GROUP=GROUP,
                   FEEDLINE_FAULT_INJECTION="1")  # fmt: skip
        argv = [sys.executable, "-m", "feedline.pipeline", *(["--respawn"] if self.respawn else [])]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
        return self

    def worker_pid(self) -> int | None:
        """The process that runs the actors (the respawn loop's child, or the process)."""
        assert self.process is not None
        if not self.respawn:
            return self.process.pid
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    def kill_worker(self) -> int:
        pid = self.worker_pid()
        assert pid is not None, "no pipeline worker to kill"
        os.kill(pid, signal.SIGKILL)
        return pid

    def actors(self) -> dict[str, Any] | None:
        status, body = get(self.url + "/health/actors")
        return body if status == 200 and isinstance(body, dict) else None

    def metrics(self) -> dict[str, float] | None:
        status, body = get(self.url + "/metrics")
        return parse_metrics(body) if status == 200 and isinstance(body, str) else None

    def partitions(self) -> list[dict[str, Any]]:
        report = self.actors()
        node = find_node(report["tree"], "kafka-consumer") if report else None
        return (node or {}).get("stats", {}).get("partitions", []) if node else []

    def wait_assigned(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.partitions():
            assert self.process is not None and self.process.poll() is None, (
                f"pipeline exited; see {self.log}"
            )
            assert time.monotonic() < deadline, f"no partitions assigned; see {self.log}"
            time.sleep(0.5)

    def stop(self, timeout: float = 75.0) -> int | None:  # above its 55 s stop bound
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class Web:
    """gunicorn serving the API (2 sync workers) on a free port, its ops listener on another."""

    def __init__(self, log: Path, metrics_dir: Path, pipeline_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ops_port = free_port()
        self.ops_url = f"http://127.0.0.1:{self.ops_port}"
        self.log = log
        self.env = dict(os.environ, FEEDLINE_WEB_PORT=str(self.port), FEEDLINE_WEB_WORKERS="2",
                        FEEDLINE_OPS_PORT=str(self.ops_port),
                        FEEDLINE_METRICS_DIR=str(metrics_dir),
                        FEEDLINE_PIPELINE_HEALTH_URL=pipeline_url)  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Web:
        argv = [str(BIN / "gunicorn"), "-c", "python:feedline.http.gunicorn_conf",
                "feedline.http.app:get_app()"]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while get(self.url + "/openapi.json")[0] != 200:
            assert self.process.poll() is None, f"gunicorn exited; see {self.log}"
            assert time.monotonic() < deadline, f"web not up; see {self.log}"
            time.sleep(0.3)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
