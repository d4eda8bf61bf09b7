"""The web maps the lower layers' plain errors to JSON 400, 404 and 503 with Retry-After.

Pure logic: a throwaway resource raises each error in a Falcon test client (no backing
services involved); the integration suites check the same answers through real reads.
"""

from __future__ import annotations

import falcon
import falcon.testing
import pytest

from feedline.errors import BadCursor, DependencyUnavailable, NotFound
from feedline.http import error_handlers


class Raises:
    def __init__(self, exc: Exception):
        self.exc = exc

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "status", "title"),
    [
        (BadCursor("wrong length"), 400, "Invalid cursor"),
        (NotFound("user", 42), 404, "No such user"),
        (DependencyUnavailable("cassandra", "timeout"), 503, "Service unavailable"),
    ],
)
def test_plain_errors_become_json_http_errors(exc, status, title):
    app = falcon.App()
    error_handlers.install(app)
    app.add_route("/x", Raises(exc))
    resp = falcon.testing.TestClient(app).simulate_get("/x")
    assert resp.status_code == status
    assert resp.json["title"] == title and resp.json["description"]
    if status == 503:
        assert resp.headers["Retry-After"] == "1"
    if status == 404:
        assert resp.json["description"] == "No user 42."
