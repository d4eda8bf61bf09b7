"""/health reports each dependency; /metrics counts requests by route template and status."""

from __future__ import annotations

import pytest

from feedline.http.app import create_app
from feedline.http.deps import Deps
from feedline.http.health import Check

pytestmark = pytest.mark.integration


def test_health_is_ok_when_postgresql_is(client):
    resp = client.simulate_get("/health")
    assert resp.status_code == 200
    assert resp.json["status"] == "ok"
    assert resp.json["checks"]["postgresql"]["ok"] is True


def test_extra_checks_are_reported(settings, database):
    import falcon.testing

    def broken() -> None:
        raise ConnectionError("redis down")

    deps = Deps(settings=settings, db=database, checks=[Check("redis", broken)])
    resp = falcon.testing.TestClient(create_app(deps)).simulate_get("/health")
    assert resp.status_code == 503
    assert resp.json["checks"]["redis"] == {"ok": False, "error": "redis down"}
    assert resp.json["checks"]["postgresql"]["ok"] is True


def test_metrics_count_requests_by_route_template(client, signup):
    user = signup()
    client.simulate_get(f"/v1/users/{user.id}", headers=user.headers)
    resp = client.simulate_get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'route="/v1/users",status="201"' in text
    assert 'feedline_http_requests_total{method="GET",route="/v1/users/{user_id:id}"' in text
    assert "feedline_http_request_duration_seconds_bucket" in text
    # Labels carry the route template, never the concrete id (bounded cardinality).
    assert f'route="/v1/users/{user.id}"' not in text
