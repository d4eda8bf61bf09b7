"""Make every error a JSON ``{"title", "description"}``, and a 500 only when unexpected.

Lower layers raise plain ``feedline.errors`` (the read model knows nothing of HTTP); this
module alone says what each means to a client: a bad cursor is a 400, a missing owner a
404, a dependency that is down a 503 with Retry-After.
"""

from __future__ import annotations

import json
import logging

import falcon
from psycopg2.errors import ForeignKeyViolation

from feedline.errors import BadCursor, DependencyUnavailable, NotFound

logger = logging.getLogger(__name__)


def serialize(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """Render an HTTPError as JSON whatever the client accepts."""
    title = exc.title or "Error"
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps({"title": title, "description": exc.description or title}).encode()


def dependency_unavailable(
    req: falcon.Request, resp: falcon.Response, exc: DependencyUnavailable, params: dict
) -> None:
    """Answer 503 with Retry-After when a backing service is down."""
    logger.warning("%s %s: %s", req.method, req.uri_template or req.path, exc)
    raise falcon.HTTPServiceUnavailable(
        title="Service unavailable",
        description=f"{exc.dependency} is unavailable; retry shortly.",
        retry_after=1,
    )


def bad_cursor(req: falcon.Request, resp: falcon.Response, exc: BadCursor, params: dict) -> None:
    """Answer 400 for a cursor that is malformed, forged or issued for another list."""
    raise falcon.HTTPBadRequest(
        title="Invalid cursor",
        description="The cursor is malformed or was not issued for this list.",
    )


def not_found(req: falcon.Request, resp: falcon.Response, exc: NotFound, params: dict) -> None:
    """Answer 404 for a list whose owner (a user, a shard) does not exist."""
    raise falcon.HTTPNotFound(title=f"No such {exc.kind}", description=f"No {exc.kind} {exc.id}.")


def reference_gone(
    req: falcon.Request, resp: falcon.Response, exc: ForeignKeyViolation, params: dict
) -> None:
    """Answer 409 when a row this request refers to was deleted meanwhile.

    Writes lock what they refer to first, so this is the race with an account deletion:
    its caller's token still passed (cached for up to a second) or its insert waited on
    the deleted user's lock. Not a bug, and not the client's fault either.
    """
    raise falcon.HTTPConflict(
        title="Gone meanwhile",
        description="An account or shard this request refers to was deleted meanwhile.",
    )


def unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict) -> None:
    """Log a bug with its traceback (never headers or body) and answer a JSON 500."""
    logger.exception("unhandled error in %s %s", req.method, req.uri_template or req.path)
    raise falcon.HTTPInternalServerError(
        title="Internal server error", description="An unexpected error occurred; it is logged."
    )


def install(app: falcon.App) -> None:
    """Register the serializer and handlers (HTTPError keeps Falcon's own handler)."""
    app.set_error_serializer(serialize)
    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(DependencyUnavailable, dependency_unavailable)
    app.add_error_handler(BadCursor, bad_cursor)
    app.add_error_handler(NotFound, not_found)
    app.add_error_handler(ForeignKeyViolation, reference_gone)
