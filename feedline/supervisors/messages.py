"""Define the messages supervisors and their children exchange, as frozen dataclasses.

Children tell their supervisor `ChildFailed` / `ChildExited` (see `SupervisedActor`).
Anyone may ask a supervisor `StartChild`, `TerminateChild`, `WhichChild` or `Describe`.
`RestartDue` is the supervisor's own timer tick after a backoff.
"""

from dataclasses import dataclass
from typing import Any

import pykka

from feedline.supervisors.spec import ChildSpec


@dataclass(frozen=True)
class ChildFailed:
    """Report that a child crashed on a `tell` (pykka stopped it and dropped its inbox)."""

    child_id: str
    ref: pykka.ActorRef[Any]
    error: BaseException


@dataclass(frozen=True)
class ChildExited:
    """Report that a child stopped normally (asked to, or it stopped itself)."""

    child_id: str
    ref: pykka.ActorRef[Any]


@dataclass(frozen=True)
class StartChild:
    """Ask a supervisor to add and start a child at runtime; the reply is its ref.

    A child that cannot start is refused (the ask raises `ChildStartError`), unless
    `retry`: then it is kept and restarted like a child that crashed (backoff, restart
    intensity), and the reply is None. Senders that only tell (a tell cannot carry the
    error back, and an error raised on a tell would fail the supervisor itself) use `retry`.
    """

    spec: ChildSpec
    retry: bool = False


@dataclass(frozen=True)
class TerminateChild:
    """Ask a supervisor to stop a child and forget it; the reply says whether it existed."""

    child_id: str


@dataclass(frozen=True)
class WhichChild:
    """Ask a supervisor for the current ref of a child (None unless it is running)."""

    child_id: str


@dataclass(frozen=True)
class Describe:
    """Ask a supervisor for a `SupervisorInfo` of itself and its children."""


@dataclass(frozen=True)
class RestartDue:
    """Tell a supervisor its restart backoff is over (stale generations are ignored)."""

    generation: int
