"""Check that /openapi.json describes exactly the routes and methods the app serves."""

from __future__ import annotations

import falcon
import falcon.testing
import pytest

from feedline.db import Database
from feedline.http.app import create_app
from feedline.http.auth import is_public
from feedline.http.deps import Deps
from feedline.http.openapi import openapi_path, responder_methods
from feedline.settings import load


@pytest.fixture(scope="module")
def app() -> falcon.App:
    # The pool connects lazily, so building the app needs no database.
    settings = load()
    return create_app(Deps(settings=settings, db=Database(settings.postgres)))


def served_routes(app: falcon.App) -> dict[str, tuple[object, set[str]]]:
    """Walk Falcon's router: OpenAPI path -> (resource, methods with a responder)."""
    found = {}
    nodes = list(app._router._roots)
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children)
        if node.resource is not None:
            found[openapi_path(node.uri_template)] = (
                node.resource,
                responder_methods(node.resource),
            )
    return found


def test_document_paths_and_methods_equal_the_routes(app):
    doc = falcon.testing.TestClient(app).simulate_get("/openapi.json").json
    served = {path: methods for path, (_, methods) in served_routes(app).items()}
    documented = {path: set(item) for path, item in doc["paths"].items()}
    assert documented == served


# Everything else needs a bearer token; adding to this list is a security decision.
PUBLIC = {
    ("/v1/users", "post"),  # sign up
    ("/v1/sessions", "post"),  # log in
    ("/health", "get"),  # liveness only
    ("/openapi.json", "get"),
}


def test_only_the_known_operations_are_public(app):
    for path, (resource, methods) in served_routes(app).items():
        for method in methods:
            public = is_public(resource, method.upper())
            assert public == ((path, method) in PUBLIC), (path, method)
            assert public or "401" in resource.openapi[method]["responses"], (path, method)
            assert not is_public(resource, "OPTIONS"), path


def test_path_parameters_match_the_template(app):
    for path, (resource, methods) in served_routes(app).items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for method in methods:
            params = resource.openapi[method].get("parameters", [])
            assert {p["name"] for p in params if p["in"] == "path"} == names
