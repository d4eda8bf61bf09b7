"""A labelled prometheus metric's children, each made by ``labels()`` once.

``labels()`` takes a lock and builds its key on every call: on a hot path (an event, a
mutation chunk, a read-model lookup) that is a visible share of the work, so callers keep
the children. One helper for every such place instead of a dict per caller.
"""

from __future__ import annotations

from typing import Any


class Children(dict):
    """``children[value]`` (one label) or ``children[(v1, v2)]``: the metric's child.

    Two threads missing the same key at once both call ``labels()``, which returns the
    same child: the race is harmless.
    """

    def __init__(self, metric: Any):
        super().__init__()
        self._metric = metric

    def __missing__(self, values: Any) -> Any:
        child = self[values] = self._metric.labels(
            *(values if isinstance(values, tuple) else (values,))
        )
        return child
