"""Keep a supervisor's view of each child: its spec, current ref, state and history."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pykka

from feedline.supervisors.spec import ChildSpec

ERROR_TEXT_LIMIT = 200


class ChildState(StrEnum):
    """Name where a child is in its life, as shown by the health endpoint."""

    RUNNING = "running"
    RESTARTING = "restarting"  # dead or stopped, waiting for its restart backoff
    STOPPED = "stopped"  # ended normally and not restarted (transient)
    FAILED = "failed"  # crashed and not (yet) restarted


@dataclass(frozen=True)
class ChildInfo:
    """Describe a child at one instant; what `Describe` returns for each child."""

    id: str
    name: str
    kind: str  # "supervisor" or "actor"
    state: ChildState
    restarts: int
    last_error: str | None
    ref: pykka.ActorRef[Any] | None


@dataclass(frozen=True)
class SupervisorInfo:
    """Describe a supervisor and its children, in start order; the reply to `Describe`."""

    name: str
    strategy: str
    children: tuple[ChildInfo, ...]


@dataclass
class Child:
    """Track one child across restarts (mutable; owned by the supervisor's thread)."""

    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    state: ChildState = ChildState.STOPPED
    kind: str = "actor"
    restarts: int = 0
    last_error: str | None = None

    def is_current(self, ref: pykka.ActorRef[Any]) -> bool:
        """Tell whether `ref` is this child's live incarnation, not an older one."""
        return self.ref is not None and self.ref.actor_urn == ref.actor_urn

    def record_failure(self, error: BaseException) -> None:
        """Forget the dead ref and keep a short text of why it died."""
        self.ref = None
        self.state = ChildState.FAILED
        self.last_error = error_text(error)

    def info(self) -> ChildInfo:
        """Return an immutable description safe to hand to other threads."""
        return ChildInfo(
            id=self.spec.id,
            name=self.spec.display_name,
            kind=self.kind,
            state=self.state,
            restarts=self.restarts,
            last_error=self.last_error,
            ref=self.ref,
        )


def error_text(error: BaseException) -> str:
    """Return 'Type: message', cut short enough for a health page."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 3] + "..."
