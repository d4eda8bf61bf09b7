"""Provide deliberately failing actors, fake time and polling helpers for supervisor tests."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from feedline.supervisors import (
    Backoff,
    ChildLink,
    ChildSpec,
    Describe,
    Intensity,
    SupervisedActor,
    Supervisor,
    SupervisorInfo,
    WhichChild,
    launch,
)

NO_BACKOFF = Backoff(initial=0.0)
LENIENT = Intensity(max_restarts=100, period=60.0)


class Journal:
    """Record lifecycle events from many actor threads, in the order they happen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[str, str]] = []

    def add(self, event: str, name: str) -> None:
        """Append one event."""
        with self._lock:
            self._events.append((event, name))

    def events(self, kind: str | None = None) -> list[Any]:
        """Return all events, or only the names for one kind of event."""
        with self._lock:
            if kind is None:
                return list(self._events)
            return [name for event, name in self._events if event == kind]


class Worker(SupervisedActor):
    """Do nothing useful; crash, stop, block or fail to start on request."""

    def __init__(
        self,
        journal: Journal,
        name: str,
        *,
        start_failures: list[bool] | None = None,
        gate: threading.Event | None = None,
        link: ChildLink | None = None,
    ) -> None:
        super().__init__(link=link)
        self.journal = journal
        self.name = name
        self.start_failures = start_failures if start_failures is not None else []
        self.gate = gate
        self.processed = 0

    def on_start(self) -> None:
        """Fail when the next planned start says so, else record the start."""
        if self.start_failures and self.start_failures.pop(0):
            raise RuntimeError(f"{self.name} cannot start")
        self.journal.add("start", self.name)

    def on_stop(self) -> None:
        """Record the stop, then report it (super() last, as the base class asks)."""
        self.journal.add("stop", self.name)
        super().on_stop()

    def on_receive(self, message: Any) -> Any:
        """Act out the message: crash, exit, block or count."""
        self.processed += 1
        if message == "crash":
            raise RuntimeError(f"boom in {self.name}")
        if message == "exit":
            self.stop()
        if message == "block" and self.gate is not None:
            self.gate.wait(5)
        return self.name

    def health(self) -> dict[str, Any]:
        """Expose the message count, as a real actor would."""
        return {"messages_processed": self.processed, "in_flight": 0}


class Timers:
    """Stand in for `call_later`: record each backoff delay, fire now or on demand."""

    def __init__(self, manual: bool = False) -> None:
        self.manual = manual
        self.delays: list[float] = []
        self.pending: list[Callable[[], None]] = []

    def __call__(self, delay: float, fn: Callable[[], None]) -> None:
        """Record the delay; run `fn` at once unless manual."""
        self.delays.append(delay)
        if self.manual:
            self.pending.append(fn)
        else:
            fn()

    def fire(self) -> None:
        """Run every pending timer."""
        pending, self.pending = self.pending, []
        for fn in pending:
            fn()


class FakeClock:
    """Stand in for `time.monotonic`, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now


def wait_until(predicate: Callable[[], Any], timeout: float = 2.0) -> Any:
    """Poll until `predicate` returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.002)
    raise AssertionError(f"condition not met within {timeout}s")


def worker(journal: Journal, name: str, **options: Any) -> ChildSpec:
    """Return a spec for a supervised worker called `name`; options go to ChildSpec."""
    kwargs = {"journal": journal, "name": name, **options.pop("kwargs", {})}
    return ChildSpec(id=name, actor=Worker, kwargs=kwargs, **options)


def supervisor_spec(name: str, children: list[ChildSpec], **options: Any) -> ChildSpec:
    """Return a spec for a supervisor with fast, deterministic defaults."""
    kwargs = {
        "name": name,
        "children": children,
        "backoff": NO_BACKOFF,
        "intensity": LENIENT,
        "call_later": Timers(),
        **options,
    }
    return ChildSpec(id=name, actor=Supervisor, kwargs=kwargs, shutdown=10.0)


def start_root(children: list[ChildSpec], **options: Any) -> pykka.ActorRef[Any]:
    """Start a root supervisor the way the pipeline will: `launch` with no link."""
    return launch(supervisor_spec("root", children, **options))


def ref_of(supervisor: pykka.ActorRef[Any], child_id: str) -> Any:
    """Ask a supervisor for a child's current ref."""
    return supervisor.ask(WhichChild(child_id), timeout=2)


def info_of(supervisor: pykka.ActorRef[Any], child_id: str) -> Any:
    """Return a supervisor's ChildInfo for one child, or None."""
    info: SupervisorInfo = supervisor.ask(Describe(), timeout=2)
    return next((c for c in info.children if c.id == child_id), None)


def replaced(supervisor: pykka.ActorRef[Any], child_id: str, old: Any) -> Any:
    """Wait until a child runs with a ref other than `old`, and return the new ref."""

    def new_ref() -> Any:
        ref = ref_of(supervisor, child_id)
        return ref if ref is not None and ref.actor_urn != old.actor_urn else None

    return wait_until(new_ref)
