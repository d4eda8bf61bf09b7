"""Add the response headers every Feedline response needs, whatever route answered.

``X-Content-Type-Options: nosniff`` everywhere (JSON is never sniffed into HTML), and
``Cache-Control: no-store`` on everything but the public API description: responses carry
bearer tokens or one user's data, which no shared or browser cache may keep. Feed pages
are cached server-side, per user, where invalidation can reach them.
"""

from __future__ import annotations

import falcon

CACHEABLE = frozenset({"/openapi.json"})


class SecurityHeaders:
    """Set ``nosniff`` on every response and ``no-store`` on every per-user one."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, ok: bool
    ) -> None:
        resp.set_header("X-Content-Type-Options", "nosniff")
        if req.uri_template not in CACHEABLE:
            resp.set_header("Cache-Control", "no-store")
