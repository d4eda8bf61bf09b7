"""Stop every actor after each test, so no thread outlives it."""

from collections.abc import Iterator

import pykka
import pytest

from tests.unit.supervisors.fakes import Journal


@pytest.fixture(autouse=True)
def stop_all_actors() -> Iterator[None]:
    """Stop all actors at teardown, even when a test fails half-way, and leave none."""
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=5)
    assert pykka.ActorRegistry.get_all() == []


@pytest.fixture
def journal() -> Journal:
    """Return a fresh lifecycle journal."""
    return Journal()


@pytest.fixture
def escalations() -> list[BaseException]:
    """Collect what root supervisors escalate, instead of exiting the test run."""
    return []
