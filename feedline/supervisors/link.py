"""Tie a child to its supervisor so the child can report its own death."""

from dataclasses import dataclass
from typing import Any

import pykka


@dataclass(frozen=True)
class ChildLink:
    """Carry who supervises a child and under which id; injected at start as `link=`."""

    supervisor: pykka.ActorRef[Any]
    child_id: str
