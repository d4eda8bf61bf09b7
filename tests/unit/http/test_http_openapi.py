"""Check that /openapi.json describes exactly the routes and methods the app serves."""

from __future__ import annotations

import falcon
import falcon.testing
import pytest

from feedline.db import Database
from feedline.http.app import create_app
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


def test_public_operations_are_exactly_the_unauthenticated_ones(app):
    for path, (resource, methods) in served_routes(app).items():
        for method in methods:
            op = resource.openapi[method]
            public = op.get("security") == []
            if path.startswith("/v1/"):
                assert public == (method.upper() in getattr(resource, "public_methods", ()))
                assert public or "401" in op["responses"], (path, method)
            else:
                assert public, (path, method)


def test_path_parameters_match_the_template(app):
    for path, (resource, methods) in served_routes(app).items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for method in methods:
            params = resource.openapi[method].get("parameters", [])
            assert {p["name"] for p in params if p["in"] == "path"} == names
