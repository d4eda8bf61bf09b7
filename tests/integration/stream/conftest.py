"""The stream process under test, beside the pipeline tests' pipeline (same consumer group)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.pipeline.conftest import (  # noqa: F401 - shared fixtures
    ApiUser,
    app,
    client,
    database,
    pipeline,
    query,
    signup,
)
from tests.sse import StreamProcess

HEARTBEAT_S = "1"


@pytest.fixture(scope="session")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamProcess]:
    log = tmp_path_factory.mktemp("stream") / "stream.log"
    running = StreamProcess(log, FEEDLINE_STREAM_HEARTBEAT_S=HEARTBEAT_S).start()
    yield running
    running.stop()


def feed_ids(api: Any, user: ApiUser, limit: int) -> list[int]:
    resp = api.simulate_get("/v1/feed", params={"limit": limit}, headers=user.headers)
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json["items"]]
