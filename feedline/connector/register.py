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


def _call(
    settings: Settings, method: str, path: str, body: dict | None = None, timeout: float = 5.0
):
    """Call ``path`` on the first worker that answers (any worker serves the group's REST
    API and forwards writes to the leader): a dead worker must not stop the tools."""
    data = json.dumps(body).encode() if body is not None else None
    error: OSError | None = None
    for base in settings.connect.urls:
        req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)  # noqa: S310
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError:
            raise  # the worker answered
        except OSError as exc:  # refused, reset, timed out: try the next worker
            error = exc
            continue
        return json.loads(raw) if raw else None
    raise error or OSError("no Kafka Connect URL configured")


def connector_path(settings: Settings) -> str:
    return f"/connectors/{settings.connect.connector_name}"


# What names the database login in the connector's configuration.
LOGIN_KEYS = ("database.user", "database.password")
# How long after a config write a FAILED state may still be the previous config's.
WRITE_GRACE_S = 20.0
_last_write: dict[str, float] = {}  # connector path -> monotonic time of our last PUT


def register(settings: Settings, timeout: float = 60.0, log: str | None = None) -> bool:
    """PUT the config unless Connect already has exactly it; True if it was (re)written.

    Skipping an identical PUT matters: Connect restarts the connector on every config write.
    A connector registered under another database login (the owner, before the replication
    role existed) is switched only once Connect can log in as the new one: a worker started
    before FEEDLINE_PG_REPLICATION_PASSWORD was in its environment cannot, and switching it
    would stop change capture. Such a connector keeps its login, with a warning, until
    Connect restarts (``make down && make stack-up``).
    """
    path = connector_path(settings)
    deadline = time.monotonic() + timeout
    while True:
        want = config(settings)
        try:
            have = _get_config(settings, path)
            if have is not None and any(have.get(k) != want[k] for k in LOGIN_KEYS):
                problems = validate(settings, want)
                if problems:
                    logger.warning(
                        "connector %s keeps logging in as %s: Connect cannot log in as %s"
                        " yet (%s); restart Connect to switch",
                        settings.connect.connector_name, have.get("database.user"),
                        want["database.user"], problems[0],
                    )  # fmt: skip
                    want.update({k: have[k] for k in LOGIN_KEYS if k in have})
            if have is not None and {k: have.get(k) for k in want} == want:
                return False
            _call(settings, "PUT", f"{path}/config", want)
            _last_write[path] = time.monotonic()
            logger.info("registered connector %s", settings.connect.connector_name)
            return True
        except (OSError, ValueError) as exc:  # 409 while the worker rebalances, or starting
            if time.monotonic() > deadline:
                raise StackError("connect", f"cannot register the connector: {exc}", log) from None
            time.sleep(0.5)


def validate(settings: Settings, want: dict[str, str]) -> list[str]:
    """Ask Connect to validate ``want`` (it resolves the worker's config providers and
    Debezium tries the login); return the errors, empty when it would run."""
    cls = want["connector.class"]
    path = f"/connector-plugins/{cls}/config/validate"
    body = {**want, "name": settings.connect.connector_name}
    try:
        result = _call(settings, "PUT", path, body, timeout=30.0)
    except urllib.error.HTTPError as exc:
        return [f"validation answered HTTP {exc.code}"]
    return [
        f"{c['value']['name']}: {error}"
        for c in result.get("configs", [])
        for error in c["value"].get("errors", [])
    ]


def registered_user(settings: Settings, timeout: float = 10.0) -> str | None:
    """The database login of the registered connector; None if there is none, or no answer
    within ``timeout`` (Connect answers 409 for a while after a config write)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            have = _get_config(settings, connector_path(settings))
            return have.get("database.user") if isinstance(have, dict) else None
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.3)


def _get_config(settings: Settings, path: str) -> dict | None:
    try:
        return _call(settings, "GET", f"{path}/config")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def status(settings: Settings) -> dict:
    """The connector's status as Connect reports it (its state, each task's and worker's)."""
    return _call(settings, "GET", f"{connector_path(settings)}/status", timeout=2.0)


def state(settings: Settings) -> str:
    """Return "RUNNING" when the connector and all its tasks run, else a short description."""
    try:
        report = status(settings)
    except urllib.error.HTTPError as exc:
        return "NOT REGISTERED" if exc.code == 404 else f"HTTP {exc.code}"
    except (OSError, ValueError):
        return "UNREACHABLE"
    states = [report["connector"]["state"]] + [t["state"] for t in report.get("tasks", [])]
    if not report.get("tasks"):
        states.append("NO TASKS")
    if all(s == "RUNNING" for s in states):
        return "RUNNING"
    trace = next((t.get("trace", "") for t in report.get("tasks", []) if "trace" in t), "")
    first = trace.splitlines()[0] if trace else ""
    return "/".join(dict.fromkeys(states)) + (f": {first}" if first else "")


def wait_running(settings: Settings, timeout: float, log: str | None = None) -> None:
    """Wait until state() is RUNNING; fail with the task's error, never past ``timeout``.

    Right after :func:`register` rewrote the config, a FAILED state may still be the old
    config's (a worker restarted on a login it can no longer use, before the new one was
    written): FAILED only counts once ``WRITE_GRACE_S`` have passed since the write.
    """
    deadline = time.monotonic() + timeout
    while (current := state(settings)) != "RUNNING":
        fresh = time.monotonic() - _last_write.get(connector_path(settings), -1e9) < WRITE_GRACE_S
        if ("FAILED" in current and not fresh) or time.monotonic() > deadline:
            raise StackError("connect", f"connector not RUNNING: {current}", log)
        time.sleep(0.3)
