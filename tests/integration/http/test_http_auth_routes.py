"""No route answers an anonymous or malformed-token caller with 2xx or 5xx (issue 14).

Sent to a real gunicorn, as raw request lines, so that both gunicorn's request-line
parsing (absolute-form targets, ``//`` prefixes, percent-decoding) and Falcon's router
normalisation (leading slashes stripped, trailing slash) are in play: the spellings below
are the ones either of them folds into a routed path. ``//v1/users/1`` once answered 200
with no token, because the middleware looked at the raw path while the router did not.
"""

from __future__ import annotations

import socket

import pytest

from feedline.http.routes import ROUTES
from tests.integration.http.test_http_gunicorn import server  # noqa: F401 - the fixture
from tests.unit.http.test_http_openapi import PUBLIC  # the hand-kept allow-list, not the code's

pytestmark = pytest.mark.integration

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "FOO")
AUTHORIZATIONS = (
    None,
    "",
    "Bearer",
    "Bearer ",
    "bearer " + "A" * 43,  # well-formed, unknown
    "Bearer " + "A" * 43 + " extra",
    "Basic dXNlcjpwYXNz",
    "Bearer ../../etc",
    "Bearer\t" + "B" * 43,
)


def spellings(path: str, port: int) -> list[str]:
    """Request targets that a server or router may normalise into ``path``."""
    head, _, rest = path[1:].partition("/")
    return [
        path,
        "/" + path,  # Falcon strips every leading slash
        "///" + path[1:],
        path + "/",
        path + "?x=1",
        path + "%2F",
        "/%" + format(ord(head[0]), "02x") + head[1:] + ("/" + rest if rest else ""),
        "/." + path,
        f"http://127.0.0.1:{port}{path}",  # absolute-form request target
        f"http://127.0.0.1:{port}/{path}",
    ]


def raw_status(port: int, method: str, target: str, authorization: str | None) -> int:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    if method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", "Content-Length: 2"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if method in ("POST", "PUT", "PATCH"):
        request += b"{}"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


def test_every_route_refuses_anonymous_and_malformed_callers(server):  # noqa: F811
    port = server[0]
    unexpected = []
    sent = 0
    for template in [t for t, _ in ROUTES] + ["/openapi.json"]:
        path = template.replace("{user_id:id}", "1").replace("{shard_id:id}", "1")
        for method in METHODS:
            # The oracle is the allow-list, not the code under test: a route marked public
            # by mistake must fail here.
            public = (template, method.lower()) in PUBLIC
            for target in spellings(path, port):
                for authorization in AUTHORIZATIONS:
                    status = raw_status(port, method, target, authorization)
                    sent += 1
                    bad = status >= 500 or (not public and status < 400)
                    if bad:
                        unexpected.append((status, method, target, authorization))
    assert sent > 1000
    assert not unexpected, unexpected[:20]
