"""Register the Debezium connector with Kafka Connect and wait until it and its task run."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request

from feedline.connector import config
from feedline.errors import StackError
from feedline.settings import Settings

logger = logging.getLogger(__name__)


def _call(method: str, url: str, body: dict | None = None, timeout: float = 5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (settings URL)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        raw = resp.read()
    return json.loads(raw) if raw else None


def connector_url(settings: Settings) -> str:
    return f"{settings.connect.url.rstrip('/')}/connectors/{settings.connect.connector_name}"


def register(settings: Settings, timeout: float = 60.0, log: str | None = None) -> bool:
    """PUT the config unless Connect already has exactly it; True if it was (re)written.

    Skipping an identical PUT matters: Connect restarts the connector on every config write.
    """
    want = config(settings)
    url = connector_url(settings)
    deadline = time.monotonic() + timeout
    while True:
        try:
            have = _get_config(url)
            if have is not None and {k: have.get(k) for k in want} == want:
                return False
            _call("PUT", f"{url}/config", want)
            logger.info("registered connector %s", settings.connect.connector_name)
            return True
        except (OSError, ValueError) as exc:  # 409 while the worker rebalances, or starting
            if time.monotonic() > deadline:
                raise StackError("connect", f"cannot register the connector: {exc}", log) from None
            time.sleep(0.5)


def _get_config(url: str) -> dict | None:
    try:
        return _call("GET", f"{url}/config")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def state(settings: Settings) -> str:
    """Return "RUNNING" when the connector and all its tasks run, else a short description."""
    try:
        status = _call("GET", f"{connector_url(settings)}/status", timeout=2.0)
    except urllib.error.HTTPError as exc:
        return "NOT REGISTERED" if exc.code == 404 else f"HTTP {exc.code}"
    except (OSError, ValueError):
        return "UNREACHABLE"
    states = [status["connector"]["state"]] + [t["state"] for t in status.get("tasks", [])]
    if not status.get("tasks"):
        states.append("NO TASKS")
    if all(s == "RUNNING" for s in states):
        return "RUNNING"
    trace = next((t.get("trace", "") for t in status.get("tasks", []) if "trace" in t), "")
    first = trace.splitlines()[0] if trace else ""
    return "/".join(dict.fromkeys(states)) + (f": {first}" if first else "")


def wait_running(settings: Settings, timeout: float, log: str | None = None) -> None:
    """Wait until state() is RUNNING; fail with the task's error, never past ``timeout``."""
    deadline = time.monotonic() + timeout
    while (current := state(settings)) != "RUNNING":
        if "FAILED" in current or time.monotonic() > deadline:
            raise StackError("connect", f"connector not RUNNING: {current}", log)
        time.sleep(0.3)
