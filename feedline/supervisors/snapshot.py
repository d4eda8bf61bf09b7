"""Build the live supervision tree as plain dicts for `GET /health/actors`.

Runs in the caller's thread (e.g. an HTTP worker), not in a supervisor, so a slow child
never delays restarts. Every ask shares one deadline, so a whole snapshot takes at most
`timeout` seconds; a child that does not answer in time is marked `"responsive": False`.

Node keys: id, name, kind ("supervisor"/"actor"), state, restarts, last_error, responsive;
supervisors add children (and strategy once they answer); actors add stats (their
`health()` dict, empty if they have none or did not answer).
"""

import time
from typing import Any

import pykka
from pykka.messages import ProxyCall

from feedline.supervisors.child import ChildInfo, SupervisorInfo
from feedline.supervisors.messages import Describe

DESCRIBE_FLOOR_S = 0.5
HEALTH_CALL = ProxyCall(attr_path=("health",), args=(), kwargs={})


def snapshot(root: pykka.ActorRef[Any], timeout: float = 0.5) -> dict[str, Any]:
    """Return the tree under supervisor `root`, asking every child with one deadline."""
    node: dict[str, Any] = {
        "kind": "supervisor",
        "state": "running" if root.is_alive() else "stopped",
        "restarts": 0,
        "last_error": None,
    }
    return _fill_supervisor(node, root, time.monotonic() + timeout)


def _fill_supervisor(
    node: dict[str, Any], ref: pykka.ActorRef[Any], deadline: float
) -> dict[str, Any]:
    """Add a supervisor's strategy and children to its node."""
    node["children"] = []
    try:
        # Supervisors answer at once unless busy restarting: give each Describe a floor of
        # time, so busy actors that eat the shared deadline cannot hide the tree's shape.
        info: SupervisorInfo = ref.ask(Describe(), timeout=max(_left(deadline), DESCRIBE_FLOOR_S))
    except (pykka.Timeout, pykka.ActorDeadError):
        node.setdefault("id", "root")  # the root's name is unknown if it cannot answer
        node.setdefault("name", "root")
        node["responsive"] = False
        return node
    node.setdefault("id", info.name)  # only the root lacks them: its parent names children
    node.setdefault("name", info.name)
    node.update(strategy=info.strategy, responsive=True)
    asks = {c.id: c.ref.ask(HEALTH_CALL, block=False) for c in info.children if _is_actor(c)}
    for child in info.children:
        child_node = _base(child)
        if child.ref is not None and child.kind == "supervisor":
            _fill_supervisor(child_node, child.ref, deadline)
        elif child.id in asks:
            child_node.update(_health(asks[child.id], deadline))
        node["children"].append(child_node)
    return node


def _base(child: ChildInfo) -> dict[str, Any]:
    """Return what the supervisor itself knows about a child, with every key present."""
    node: dict[str, Any] = {
        "id": child.id,
        "name": child.name,
        "kind": child.kind,
        "state": str(child.state),
        "restarts": child.restarts,
        "last_error": child.last_error,
        "responsive": False,  # until it answers; a child without a ref cannot
    }
    if child.kind == "supervisor":
        node["children"] = []
    else:
        node["stats"] = {}
    return node


def _health(future: pykka.Future[Any], deadline: float) -> dict[str, Any]:
    """Wait for a child's `health()` until the deadline; no answer means unresponsive."""
    try:
        stats = future.get(timeout=_left(deadline))
    except AttributeError:
        return {"responsive": True, "stats": {}}  # a plain pykka actor without health()
    except (pykka.Timeout, pykka.ActorDeadError):
        return {"responsive": False, "stats": {}}
    return {"responsive": True, "stats": dict(stats or {})}


def _is_actor(child: ChildInfo) -> bool:
    """Tell whether a child is a running non-supervisor actor to ask for stats."""
    return child.ref is not None and child.kind == "actor"


def _left(deadline: float) -> float:
    """Return the seconds left until the deadline, never negative."""
    return max(0.0, deadline - time.monotonic())


def find_node(tree: dict[str, Any], child_id: str) -> dict[str, Any] | None:
    """Return the node of a snapshot whose id is ``child_id`` (depth first), or None."""
    if tree.get("id") == child_id:
        return tree
    for child in tree.get("children", ()):
        hit = find_node(child, child_id)
        if hit is not None:
            return hit
    return None
