"""Supervise pykka actors: restart them by strategy, escalate up a tree, report health.

pykka has no supervision: an actor that raises on a `tell` stops, runs `on_failure` and its
queued messages are dropped. Here a child (a `SupervisedActor`) reports its end to its
`Supervisor`, which restarts it (with a new ref) per `ChildSpec.restart` and `Strategy`,
within an `Intensity` and after a `Backoff`, and otherwise escalates to its own parent.
"""

from feedline.supervisors.child import ChildInfo, ChildState, SupervisorInfo
from feedline.supervisors.escalation import EXIT_CODE, exit_process
from feedline.supervisors.launch import ChildStartError, launch
from feedline.supervisors.link import ChildLink
from feedline.supervisors.messages import (
    ChildExited,
    ChildFailed,
    Describe,
    StartChild,
    TerminateChild,
    WhichChild,
)
from feedline.supervisors.policy import Backoff, Intensity, Strategy
from feedline.supervisors.snapshot import find_node, snapshot
from feedline.supervisors.spec import ChildSpec, Restart
from feedline.supervisors.supervised import SupervisedActor
from feedline.supervisors.supervisor import Supervisor

__all__ = [
    "EXIT_CODE",
    "Backoff",
    "ChildExited",
    "ChildFailed",
    "ChildInfo",
    "ChildLink",
    "ChildSpec",
    "ChildStartError",
    "ChildState",
    "Describe",
    "Intensity",
    "Restart",
    "StartChild",
    "Strategy",
    "SupervisedActor",
    "Supervisor",
    "SupervisorInfo",
    "TerminateChild",
    "WhichChild",
    "exit_process",
    "find_node",
    "launch",
    "snapshot",
]
