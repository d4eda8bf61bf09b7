"""Restart crashed actors by strategy, and give up to the parent when they crash too often."""

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from types import TracebackType
from typing import Any

import pykka

from feedline.errors import SupervisorEscalation
from feedline.supervisors.child import Child, ChildState, SupervisorInfo
from feedline.supervisors.escalation import exit_process
from feedline.supervisors.launch import ChildStartError, launch
from feedline.supervisors.link import ChildLink
from feedline.supervisors.messages import (
    ChildExited,
    ChildFailed,
    Describe,
    RestartDue,
    StartChild,
    TerminateChild,
    WhichChild,
)
from feedline.supervisors.policy import (
    Backoff,
    CallLater,
    Intensity,
    RestartWindow,
    Strategy,
    call_later,
)
from feedline.supervisors.spec import ChildSpec, Restart
from feedline.supervisors.supervised import SupervisedActor

logger = logging.getLogger(__name__)

DEFAULT_INTENSITY = Intensity()
DEFAULT_BACKOFF = Backoff()


class Supervisor(SupervisedActor):
    """Own a list of children: start them in order, restart them, stop them in reverse.

    A supervisor is itself a supervised actor, so supervisors nest into a tree. When its
    children need more than `intensity.max_restarts` restarts within `intensity.period`
    seconds it stops them all and fails; its parent sees that as a child failure. The root
    (no `link`) calls `on_escalate`, which by default exits the process non-zero.
    Restarts wait a backoff on a timer, so the supervisor keeps answering meanwhile.
    `on_restart(supervisor_name, child_id)` runs after each restarted child is up (metrics,
    or re-sending work the dead incarnation dropped); keep it quick, it runs in this thread.
    Stop a tree by stopping its root: `ActorRegistry.stop_all()` stops children before
    their supervisor, which takes those as unexpected exits.
    """

    def __init__(
        self,
        *,
        name: str,
        children: Sequence[ChildSpec] = (),
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: Intensity = DEFAULT_INTENSITY,
        backoff: Backoff = DEFAULT_BACKOFF,
        on_escalate: Callable[[BaseException], None] = exit_process,
        on_restart: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        call_later: CallLater = call_later,
        link: ChildLink | None = None,
    ) -> None:
        super().__init__(link=link)
        self.name = name
        self._strategy = strategy
        self._intensity = intensity
        self._backoff = backoff
        self._window = RestartWindow(intensity, clock)
        self._on_escalate = on_escalate
        self._on_restart = on_restart
        self._call_later = call_later
        self._children: dict[str, Child] = {}
        self._generation = 0
        self._last_error: str | None = None
        for spec in children:
            self._add(spec)

    def on_start(self) -> None:
        """Start every child in spec order; if one cannot start, stop the rest and fail."""
        try:
            for child in self._children.values():
                self._start(child)
        except ChildStartError:
            self._stop_children()
            raise
        logger.info("%s: started %d children", self.name, len(self._children))

    def on_receive(self, message: Any) -> Any:
        """Dispatch supervisor messages to their handlers."""
        match message:
            case ChildFailed():
                self._on_child_failed(message)
            case ChildExited():
                self._on_child_exited(message)
            case RestartDue(generation):
                self._on_restart_due(generation)
            case StartChild(spec, retry):
                return self.start_child(spec, retry=retry)
            case TerminateChild(child_id):
                return self.terminate_child(child_id)
            case WhichChild(child_id):
                return self.which_child(child_id)
            case Describe():
                return self.describe()
            case _:
                return super().on_receive(message)
        return None

    def start_child(self, spec: ChildSpec, retry: bool = False) -> pykka.ActorRef[Any] | None:
        """Add a child at runtime (last in start order) and return its ref.

        If it cannot start it is forgotten and `ChildStartError` raised; with `retry` it is
        kept and restarted like a crashed child instead (its siblings per the strategy),
        and None returned.
        """
        child = self._add(spec)
        try:
            self._start(child)
        except ChildStartError as error:
            if not retry:
                del self._children[spec.id]
                raise
            logger.warning("%s: %s", self.name, error)
            child.record_failure(error)
            self._last_error = f"{child.spec.id}: {child.last_error}"
            self._after_end(child, failed=True)
            return None
        assert child.ref is not None
        return child.ref

    def terminate_child(self, child_id: str) -> bool:
        """Stop a child gracefully and forget it; return False if there was no such child."""
        child = self._children.pop(child_id, None)
        if child is None:
            return False
        self._stop_child(child)
        return True

    def which_child(self, child_id: str) -> pykka.ActorRef[Any] | None:
        """Return the current ref of a child, or None unless it is running."""
        child = self._children.get(child_id)
        return child.ref if child is not None else None

    def describe(self) -> SupervisorInfo:
        """Return this supervisor's strategy and its children's states, in start order."""
        children = tuple(child.info() for child in self._children.values())
        return SupervisorInfo(self.name, str(self._strategy), children)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the children, then escalate: tell the parent, or call `on_escalate` at root.

        Children stop first so that two generations of them never run side by side (the
        parent restarts this supervisor as soon as it hears). The escalation is in a
        `finally`: pykka swallows what `on_failure` raises, and a cleanup error must not
        leave the parent believing this supervisor runs.
        """
        try:
            self._stop_children()
        finally:
            if self.link is not None:
                super().on_failure(exception_type, exception_value, traceback)
            else:
                self._on_escalate(exception_value or RuntimeError(f"{self.name} failed"))

    def on_stop(self) -> None:
        """Stop the children in reverse start order, then report to the parent."""
        try:
            self._stop_children()
        finally:
            super().on_stop()

    def _on_child_failed(self, message: ChildFailed) -> None:
        """Record a crash and restart per policy and strategy; ignore older incarnations."""
        child = self._current(message.child_id, message.ref)
        if child is None:
            return
        logger.warning("%s: %s failed: %r", self.name, child.spec.display_name, message.error)
        child.record_failure(message.error)
        self._last_error = f"{child.spec.id}: {child.last_error}"
        self._after_end(child, failed=True)

    def _on_child_exited(self, message: ChildExited) -> None:
        """Record a normal stop the supervisor did not ask for; restart if permanent."""
        child = self._current(message.child_id, message.ref)
        if child is None:
            return
        logger.info("%s: %s stopped", self.name, child.spec.display_name)
        child.ref = None
        child.state = ChildState.STOPPED
        self._after_end(child, failed=False)

    def _after_end(self, child: Child, failed: bool) -> None:
        """Forget, keep or restart an ended child, stopping siblings its strategy names."""
        if child.spec.restart is Restart.TEMPORARY:
            del self._children[child.spec.id]
            return
        if not child.spec.restart.restarts_after(failed):
            return
        child.state = ChildState.RESTARTING
        affected = self._strategy.affected(list(self._children), child.spec.id)
        for sibling_id in reversed(affected):
            sibling = self._children[sibling_id]
            if sibling.ref is None:
                continue
            self._stop_child(sibling)
            if sibling.spec.restart is Restart.TEMPORARY:
                del self._children[sibling_id]
            else:
                sibling.state = ChildState.RESTARTING
        self._schedule_restart()

    def _schedule_restart(self) -> None:
        """Ask for a `RestartDue` after the backoff; a newer schedule supersedes this one."""
        self._generation += 1
        delay = self._backoff.delay(self._window.count())
        logger.info("%s: restarting children in %.3fs", self.name, delay)
        self._call_later(delay, partial(self._tell_self, RestartDue(self._generation)))

    def _on_restart_due(self, generation: int) -> None:
        """Restart every child waiting for it, in start order, or give up if too many."""
        if generation != self._generation:
            return
        if not self._window.record():
            self._give_up()
        for child in list(self._children.values()):
            if child.state is not ChildState.RESTARTING:
                continue
            try:
                self._start(child)
            except ChildStartError as error:
                child.record_failure(error)
                self._last_error = f"{child.spec.id}: {child.last_error}"
                self._after_end(child, failed=True)
                return
            child.restarts += 1
            if self._on_restart is not None:
                self._on_restart(self.name, child.spec.id)

    def _give_up(self) -> None:
        """Stop all children and fail, which escalates via `on_failure`."""
        limit = self._intensity
        error = SupervisorEscalation(
            f"{self.name}: more than {limit.max_restarts} restarts in {limit.period}s"
            f" (last: {self._last_error})"
        )
        logger.error("%s", error)
        self._stop_children()
        raise error

    def _add(self, spec: ChildSpec) -> Child:
        """Register a spec as the last child; ids are unique within a supervisor."""
        if spec.id in self._children:
            raise ValueError(f"{self.name}: duplicate child id {spec.id!r}")
        child = Child(spec)
        self._children[spec.id] = child
        return child

    def _start(self, child: Child) -> None:
        """Start a child, wait for its `on_start`, and mark it running."""
        child.ref = launch(child.spec, ChildLink(self.actor_ref, child.spec.id))
        child.kind = "supervisor" if issubclass(child.ref.actor_class, Supervisor) else "actor"
        child.state = ChildState.RUNNING

    def _stop_children(self) -> None:
        """Stop running children in reverse start order (dependents before dependencies)."""
        for child in reversed(list(self._children.values())):
            if child.ref is not None:
                self._stop_child(child)
                child.state = ChildState.STOPPED

    def _stop_child(self, child: Child) -> None:
        """Stop one child gracefully within its shutdown time; its report will be stale."""
        ref, child.ref = child.ref, None
        if ref is None:
            return
        try:
            ref.stop(block=True, timeout=child.spec.shutdown)
        except pykka.Timeout:
            logger.error(
                "%s: %s did not stop within %.1fs; abandoned",
                self.name,
                child.spec.display_name,
                child.spec.shutdown,
            )
        except Exception:  # never let one child's stop keep the others running
            logger.exception("%s: stopping %s failed", self.name, child.spec.display_name)

    def _current(self, child_id: str, ref: pykka.ActorRef[Any]) -> Child | None:
        """Return the child if `ref` is its live incarnation, else None (a stale report)."""
        child = self._children.get(child_id)
        if child is None or not child.is_current(ref):
            logger.debug("%s: stale report from %s ignored", self.name, ref)
            return None
        return child

    def _tell_self(self, message: Any) -> None:
        """Send this supervisor a message from a timer thread; it may be gone by then."""
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            logger.debug("%s: gone before %r", self.name, message)
