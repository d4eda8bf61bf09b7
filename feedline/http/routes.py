"""List every route of the API in one place, and the operations routes beside them.

To add an endpoint: write a resource class (``on_<method>`` responders plus an ``openapi``
dict with one operation per responder, see :mod:`feedline.http.spec`) in its own module,
then add one ``(uri_template, factory)`` line below. ``{name:id}`` matches positive bigint
ids only. ``GET /openapi.json`` and its test pick the new route up by themselves. Every
operation needs a bearer token unless its OpenAPI operation is ``public=True``.

``OPS_ROUTES`` are served only on the internal ops port (loopback by default): readiness
with dependency detail, the pipeline's actor tree, and Prometheus metrics.
"""

from __future__ import annotations

from collections.abc import Callable

from feedline.http import (
    account,
    comments,
    feed,
    following,
    follows,
    likes,
    sessions,
    shards,
    stream_tickets,
    users,
)
from feedline.http.actors import PipelineActors
from feedline.http.deps import Deps
from feedline.http.health import Check, Liveness, Readiness
from feedline.http.metrics import Metrics


def liveness(deps: Deps) -> Liveness:
    return Liveness()


def readiness(deps: Deps) -> Readiness:
    return Readiness([Check("postgresql", deps.db.ping), *deps.checks])


def actors(deps: Deps) -> PipelineActors:
    return PipelineActors(deps.settings.web.pipeline_health_url)


def metrics(deps: Deps) -> Metrics:
    return Metrics(deps.settings.web.metrics_dir)


Routes = tuple[tuple[str, Callable[[Deps], object]], ...]

ROUTES: Routes = (
    ("/v1/users", users.Users),
    ("/v1/users/me", account.Account),
    ("/v1/sessions", sessions.Sessions),
    ("/v1/sessions/current", sessions.CurrentSession),
    ("/v1/users/{user_id:id}", users.User),
    ("/v1/users/{user_id:id}/shards", feed.UserShards),
    ("/v1/users/{user_id:id}/followers", follows.Followers),
    ("/v1/users/{user_id:id}/following", follows.FollowingList),
    ("/v1/feed", feed.Feed),
    ("/v1/stream-tickets", stream_tickets.StreamTickets),
    ("/v1/following/{user_id:id}", following.Following),
    ("/v1/shards", shards.Shards),
    ("/v1/shards/{shard_id:id}", shards.Shard),
    ("/v1/shards/{shard_id:id}/comments", comments.ShardComments),
    ("/v1/shards/{shard_id:id}/like", likes.ShardLike),
    ("/health", liveness),
)

OPS_ROUTES: Routes = (
    ("/health", liveness),
    ("/health/ready", readiness),
    ("/health/actors", actors),
    ("/metrics", metrics),
)
