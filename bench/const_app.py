"""A constant-response Falcon app: the ceiling the product API is compared with.

Served by the product's own gunicorn config (``gunicorn -c python:feedline.http.gunicorn_conf
bench.const_app:app``), it measures what gunicorn + Falcon cost per request on this
machine with no auth, no database and no JSON work, so the API's figures read as a
fraction of what the framework allows here. Kept out of the product's routes on purpose.
"""

from __future__ import annotations

import falcon

BODY = b'{"ok": true}'


class Constant:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = BODY
        resp.content_type = falcon.MEDIA_JSON


app = falcon.App()
app.add_route("/const", Constant())
