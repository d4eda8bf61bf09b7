"""Provide the base class for actors that tell their supervisor when they end."""

import logging
from types import TracebackType
from typing import Any

import pykka

from feedline.supervisors.link import ChildLink
from feedline.supervisors.messages import ChildExited, ChildFailed

logger = logging.getLogger(__name__)


class SupervisedActor(pykka.ThreadingActor):
    """Report this actor's end to its supervisor, since pykka itself tells no one.

    Subclasses accept `link` and pass it on: `def __init__(self, dep, *, link=None):
    super().__init__(link=link)`. Subclasses overriding `on_failure` or `on_stop` must
    make sure `super()` runs even when their own cleanup raises or hangs: pykka swallows
    what these hooks raise, so a cleanup error before the report hides the end and the
    supervisor keeps showing a dead child as running. Report first and clean up in a
    `finally` (`try: super().on_failure(...) finally: self._close()`) when the cleanup can
    block or fail (closing a client); clean up in `try` and report in `finally` when the
    supervisor must not restart the child before the cleanup is over.

    Health protocol: override `health()` to return a small JSON-able dict of stats, e.g.
    `{"messages_processed": 120, "in_flight": 3}`; snapshots call it with a short timeout.

    Do not `ask` your own supervisor from `on_start`: it is waiting for `on_start` to finish
    (children start one by one, in order) and the ask would only end by timeout.
    """

    def __init__(self, *, link: ChildLink | None = None) -> None:
        super().__init__()
        self.link = link

    def health(self) -> dict[str, Any]:
        """Return stats for the health endpoint; none by default."""
        return {}

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Tell the supervisor this actor crashed, so it can be restarted."""
        if self.link is not None:
            error = exception_value or RuntimeError("unknown failure")
            self._report(ChildFailed(self.link.child_id, self.actor_ref, error))

    def on_stop(self) -> None:
        """Tell the supervisor this actor stopped normally (ignored if it asked for it)."""
        if self.link is not None:
            self._report(ChildExited(self.link.child_id, self.actor_ref))

    def _report(self, message: ChildFailed | ChildExited) -> None:
        """Send an end-of-life report; a supervisor already gone has nothing to do."""
        assert self.link is not None
        try:
            self.link.supervisor.tell(message)
        except pykka.ActorDeadError:
            logger.debug("%s: supervisor gone, dropped %s", self, type(message).__name__)
