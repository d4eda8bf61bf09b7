"""Start one child from its spec and wait until it is ready, so start order means something."""

import logging
from typing import Any

import pykka
from pykka.messages import ProxyGetAttr

from feedline.errors import FeedlineError
from feedline.supervisors.link import ChildLink
from feedline.supervisors.spec import ChildSpec

logger = logging.getLogger(__name__)


class ChildStartError(FeedlineError):
    """A child could not be constructed or its `on_start` failed or took too long."""


def launch(spec: ChildSpec, link: ChildLink | None = None) -> pykka.ActorRef[Any]:
    """Start the child described by `spec` and return its ref once `on_start` has run.

    pykka runs `on_start` on the new thread and, if it raises, only logs and stops the actor
    (no `on_failure`). So we ask the child a trivial question: the answer arrives after
    `on_start` succeeded, and a dead child answers `ActorDeadError`. Use this for the root
    too (`launch(root_spec)`): a tree that cannot start raises `ChildStartError` here.
    """
    try:
        ref = _start(spec, link)
    except Exception as error:
        raise ChildStartError(f"{spec.display_name}: could not start: {error}") from error
    try:
        ref.ask(ProxyGetAttr(attr_path=("actor_urn",)), timeout=spec.start_timeout)
    except pykka.ActorDeadError as error:
        raise ChildStartError(f"{spec.display_name}: on_start failed (see log)") from error
    except pykka.Timeout as error:
        ref.stop(block=False)
        raise ChildStartError(
            f"{spec.display_name}: not ready within {spec.start_timeout}s"
        ) from error
    logger.debug("started %s as %s", spec.display_name, ref)
    return ref


def _start(spec: ChildSpec, link: ChildLink | None) -> pykka.ActorRef[Any]:
    """Call the actor class's `start` or the factory with the spec's kwargs and the link."""
    if isinstance(spec.actor, type) and issubclass(spec.actor, pykka.Actor):
        return spec.actor.start(link=link, **spec.kwargs)
    return spec.actor(link=link, **spec.kwargs)
