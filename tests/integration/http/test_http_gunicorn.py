"""Serve the app as the Procfile does (gunicorn, several workers) and check what it logs.

Covers what the in-process TestClient cannot: ``get_app()`` connecting lazily after the
fork, prometheus multiprocess aggregation across workers, and an access log free of tokens.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.integration.http.conftest import PASSWORD

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port: int, method: str, path: str, body=None, token=None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def server(tmp_path):
    port, ops_port = free_port(), free_port()
    env = {
        **os.environ,
        "FEEDLINE_WEB_PORT": str(port),
        "FEEDLINE_OPS_PORT": str(ops_port),
        "FEEDLINE_WEB_WORKERS": "2",
        "FEEDLINE_METRICS_DIR": str(tmp_path / "metrics"),
    }
    log = (tmp_path / "gunicorn.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:feedline.http.gunicorn_conf",
         "feedline.http.app:get_app()"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            if call(port, "GET", "/health")[0] == 200:
                break
        except OSError:
            pass
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
        assert time.monotonic() < deadline, "gunicorn did not come up"
        time.sleep(0.2)
    yield port, tmp_path / "gunicorn.log", ops_port
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    log.close()


def test_gunicorn_serves_writes_aggregates_metrics_and_never_logs_tokens(server):
    port, log_path, ops_port = server
    status, body = call(
        port, "POST", "/v1/users", {"handle": f"g_{secrets.token_hex(6)}", "password": PASSWORD}
    )
    assert status == 201
    token = json.loads(body)["token"]
    for _ in range(20):
        status, _ = call(port, "POST", "/v1/shards", {"body": "via gunicorn"}, token)
        assert status == 201
    assert call(port, "GET", "/v1/shards/1", token="x" * 43)[0] == 401

    # Metrics are served on the ops listener only; the API port does not route them.
    assert call(port, "GET", "/metrics")[0] == 404
    status, text = call(ops_port, "GET", "/metrics")
    assert status == 200
    line = next(
        ln for ln in text.decode().splitlines()
        if ln.startswith("feedline_http_requests_total{")
        and 'route="/v1/shards"' in ln and 'status="201"' in ln
    )  # fmt: skip
    # Both workers' counts are summed, whichever worker served /metrics.
    assert float(line.rsplit(" ", 1)[1]) == 20.0

    time.sleep(0.5)
    logged = log_path.read_text()
    assert '"POST /v1/shards HTTP/1.1" 201' in logged
    assert token not in logged
    assert "Bearer" not in logged


def test_a_revoked_token_is_refused_at_once_by_every_gunicorn_worker(server):
    """Both workers cache the token, then one revokes it: the broadcast reaches the other
    at once. Without it the other would keep accepting it for up to 1 s (its fallback)."""
    port, _, _ = server
    handle = f"g_{secrets.token_hex(6)}"
    status, body = call(port, "POST", "/v1/users", {"handle": handle, "password": PASSWORD})
    assert status == 201
    user_id, token = json.loads(body)["id"], json.loads(body)["token"]
    path = f"/v1/users/{user_id}"
    # A new connection per call: each goes to whichever sync worker accepts it first.
    assert {call(port, "GET", path, token=token)[0] for _ in range(40)} == {200}
    assert call(port, "DELETE", "/v1/sessions/current", token=token)[0] == 204
    assert [call(port, "GET", path, token=token)[0] for _ in range(40)] == [401] * 40
    status, body = call(port, "POST", "/v1/sessions", {"handle": handle, "password": PASSWORD})
    assert status == 201
    assert call(port, "GET", path, token=json.loads(body)["token"])[0] == 200
