"""Liveness on the API; readiness, actors and metrics only on the ops app (issue 14)."""

from __future__ import annotations

import falcon.testing
import pytest

from feedline.http.app import create_ops_app
from feedline.http.deps import Deps
from feedline.http.health import Check

pytestmark = pytest.mark.integration


@pytest.fixture
def ops(settings, database) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_ops_app(Deps(settings=settings, db=database)))


def test_public_health_is_liveness_only(client):
    resp = client.simulate_get("/health")
    assert resp.status_code == 200
    assert resp.json == {"status": "ok"}


@pytest.mark.parametrize("path", ["/health/ready", "/health/actors", "/metrics"])
def test_operations_endpoints_are_not_on_the_api(client, path):
    assert client.simulate_get(path).status_code in (401, 404)


def test_readiness_reports_each_dependency(ops):
    resp = ops.simulate_get("/health/ready")
    assert resp.status_code == 200
    assert resp.json["status"] == "ok"
    assert resp.json["checks"]["postgresql"]["ok"] is True


def test_failed_checks_report_a_class_name_not_the_message(settings, database):
    def broken() -> None:
        raise ConnectionError("redis down at 10.0.0.7:6379")

    deps = Deps(settings=settings, db=database, checks=[Check("redis", broken)])
    resp = falcon.testing.TestClient(create_ops_app(deps)).simulate_get("/health/ready")
    assert resp.status_code == 503
    assert resp.json["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert resp.json["checks"]["postgresql"]["ok"] is True


def test_probes_are_cached_so_callers_cannot_stall_workers(settings, database):
    calls = []

    def counted() -> None:
        calls.append(1)

    deps = Deps(settings=settings, db=database, checks=[Check("counted", counted)])
    ops = falcon.testing.TestClient(create_ops_app(deps))
    for _ in range(20):
        assert ops.simulate_get("/health/ready").status_code == 200
    assert len(calls) == 1


def test_metrics_count_requests_by_route_template(client, ops, signup):
    user = signup()
    client.simulate_get(f"/v1/users/{user.id}", headers=user.headers)
    resp = ops.simulate_get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'route="/v1/users",status="201"' in text
    assert 'feedline_http_requests_total{method="GET",route="/v1/users/{user_id:id}"' in text
    assert "feedline_http_request_duration_seconds_bucket" in text
    # Labels carry the route template, never the concrete id (bounded cardinality).
    assert f'route="/v1/users/{user.id}"' not in text


def test_made_up_methods_share_one_label(client, ops):
    for method in ("FOO", "BAR", "PROPFIND"):
        assert client.simulate_request(method, "/v1/feed").status_code < 500
    text = ops.simulate_get("/metrics").text
    assert 'method="OTHER"' in text
    assert 'method="FOO"' not in text and 'method="PROPFIND"' not in text


def test_security_headers(client, signup):
    user = signup()
    resp = client.simulate_get("/v1/feed", headers=user.headers)
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["cache-control"] == "no-store"
    created = client.simulate_post("/v1/users", json={"handle": "x"})  # 422, still no-store
    assert created.headers["cache-control"] == "no-store"
    assert client.simulate_get("/openapi.json").headers["x-content-type-options"] == "nosniff"
