"""Assemble the OpenAPI 3.1 document from the operations each resource declares."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import falcon

from feedline.http import spec

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# "/v1/shards/{shard_id:id}" -> "/v1/shards/{shard_id}"
_CONVERTER = re.compile(r"\{(\w+):[^}]*\}")


def openapi_path(template: str) -> str:
    return _CONVERTER.sub(r"{\1}", template)


def responder_methods(resource: object) -> set[str]:
    """Return the lower-case HTTP methods ``resource`` has an ``on_<method>`` for."""
    return {m for m in HTTP_METHODS if callable(getattr(resource, f"on_{m}", None))}


def build_document(routes: Iterable[tuple[str, object]]) -> dict[str, Any]:
    """Return the document for ``(uri_template, resource)`` pairs."""
    paths: dict[str, Any] = {}
    for template, resource in routes:
        operations = getattr(resource, "openapi", {})
        missing = responder_methods(resource) - set(operations)
        if missing:
            raise ValueError(f"{template}: no OpenAPI operation for {sorted(missing)}")
        paths[openapi_path(template)] = dict(operations)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Feedline", "version": "1"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "schemas": spec.SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


class OpenApi:
    """``GET /openapi.json``: the API description."""

    openapi = {
        "get": spec.operation(
            "This document",
            {"200": spec.json_response("OpenAPI 3.1 document", {"type": "object"})},
            public=True,
        )
    }

    def __init__(self, routes: Iterable[tuple[str, object]]):
        routes = [*routes, ("/openapi.json", self)]
        self.document = build_document(routes)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
