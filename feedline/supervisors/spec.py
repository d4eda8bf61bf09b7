"""Describe a supervised child: what to start, with what, how to restart it and stop it."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pykka

ActorFactory = Callable[..., pykka.ActorRef[Any]]
"""A callable taking the start kwargs plus `link=` and returning a started actor's ref."""


class Restart(StrEnum):
    """Say when a child that ended is started again (OTP's restart types)."""

    PERMANENT = "permanent"  # always: after a failure and after a normal stop
    TRANSIENT = "transient"  # only after a failure; a normal stop is final
    TEMPORARY = "temporary"  # never; the child is forgotten once it ends

    def restarts_after(self, failed: bool) -> bool:
        """Tell whether a child with this policy is restarted after it ended this way."""
        if self is Restart.PERMANENT:
            return True
        return self is Restart.TRANSIENT and failed


@dataclass(frozen=True)
class ChildSpec:
    """Describe one child so a supervisor can start it again identically after a crash.

    `actor` is a pykka actor class (started with `actor.start(link=..., **kwargs)`) or a
    factory called as `actor(link=..., **kwargs)`. Dependencies go in `kwargs`; the
    supervisor adds `link`, which the child passes on to `SupervisedActor.__init__`.
    `shutdown` bounds a graceful stop (give nested supervisors room for their children);
    `start_timeout` bounds `on_start`, which the supervisor waits for before the next child.
    """

    id: str
    actor: type[pykka.Actor] | ActorFactory
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    restart: Restart = Restart.PERMANENT
    shutdown: float = 5.0
    start_timeout: float = 5.0
    name: str = ""

    @property
    def display_name(self) -> str:
        """Return the name shown in logs and health snapshots (the id unless named)."""
        return self.name or self.id
