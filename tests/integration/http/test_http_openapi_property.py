"""Fuzz every operation of /openapi.json with schemathesis: no 5xx, responses conform.

Requests carry a real bearer token, so the authenticated code paths run, not only the 401
ones. The app is built at import (nothing connects until the first request), because
schemathesis' fixture-based lazy loading does not work with pytest 9 (``_nodeid``).
"""

from __future__ import annotations

import secrets

import falcon.testing
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from feedline.db import Database
from feedline.http.app import create_app
from feedline.http.auth import new_token, store_token
from feedline.http.deps import Deps
from feedline.settings import load
from tests.integration.http.conftest import PASSWORD

pytestmark = pytest.mark.integration

_settings = load()
_db = Database(_settings.postgres)
APP = create_app(Deps(settings=_settings, db=_db))
# /health/actors relays another process (the pipeline), whose absence is a deliberate 503;
# its own test covers both answers (tests/integration/pipeline).
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP).exclude(path="/health/actors")


# Log-out and account deletion end the token they carry: each of their examples gets a
# user of its own, so the shared token keeps working for every other operation. Those
# users are made in PostgreSQL directly: forty sign-ups would hit the per-address limit.
OWN_USER = {("DELETE", "/v1/users/me"), ("DELETE", "/v1/sessions/current")}


def direct_token() -> str:
    def work(cur) -> str:
        cur.execute(
            "INSERT INTO users (handle) VALUES (%s) RETURNING id", (f"fz_{secrets.token_hex(6)}",)
        )
        token = new_token()
        store_token(cur, cur.fetchone()[0], token, _settings.accounts.token_ttl_s)
        return token

    return _db.run(work)


@pytest.fixture(scope="module")
def token():
    resp = falcon.testing.TestClient(APP).simulate_post(
        "/v1/users", json={"handle": f"fz_{secrets.token_hex(6)}", "password": PASSWORD}
    )
    assert resp.status_code == 201, resp.text
    yield resp.json["token"]
    _db.close()


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors_and_conforming_responses(case, token):
    if (case.method.upper(), case.path) in OWN_USER:
        token = direct_token()
    case.call_and_validate(headers=auth_headers(case, token))


def auth_headers(case, token: str) -> dict[str, str]:
    """Return the real bearer header for ``case``, or none for a negative case of a
    protected operation that left Authorization out on purpose (adding the token there
    made a valid request, which schemathesis then reported as negative data accepted)."""
    protected = case.operation.definition.raw.get("security") != []
    negative = case.meta is not None and case.meta.generation.mode == GenerationMode.NEGATIVE
    if protected and negative and "Authorization" not in (case.headers or {}):
        return {}
    return {"Authorization": f"Bearer {token}"}
