"""Live streams through faults (issue 18): the stream process SIGKILLed, Redis restarted,
the pipeline SIGKILLed, one after another under the suite's mixed API load.

Six load users each hold a stream (``tests.sse.LiveView``, a real SSE client keeping the
newest 20 items as a client does). When the stream process dies, a new one (another port:
"elsewhere") takes every client with its Last-Event-ID. At the end, with the load stopped
and the pipeline caught up, every client's view is exactly the head of its feed as
``GET /v1/feed?limit=20`` shows it, and no client ever got an item it already held.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.failure.conftest import Services
from tests.failure.load import Load
from tests.failure.procs import Pipeline, Web
from tests.sse import LiveView, StreamProcess, wait

pytestmark = [pytest.mark.failure, pytest.mark.integration]
PATH = "/v1/feed/stream"
LIMIT = 20


def test_streams_end_exact_through_stream_kill_redis_restart_and_pipeline_kill(
    web: Web, pipeline: Pipeline, services: Services, failure_dir: Path
):
    load = Load(web.url, rate_per_s=20.0, threads=2, max_ops=100_000)
    load.signup(6)
    stream = StreamProcess(failure_dir / "stream-1.log").start()
    views = [
        LiveView(stream.url + PATH, {"Authorization": f"Bearer {token}"}, limit=LIMIT).open()
        for _, token in load.users
    ]
    load.start()
    try:
        time.sleep(4)
        stream.stop(signal.SIGKILL)
        assert all(v.ended.wait(5) for v in views), "a stream outlived its process"
        stream = StreamProcess(failure_dir / "stream-2.log").start()
        for v in views:
            v.url = stream.url + PATH
            v.resume()
        assert all(v.status == 200 for v in views)
        time.sleep(4)
        services.stop("redis")
        time.sleep(3)
        services.start("redis")
        wait(lambda: stream.health()["notices_subscribed"], 30, "not subscribed again")
        time.sleep(4)
        pipeline.kill_worker()
        time.sleep(6)
    finally:
        load.stop()
    try:
        for (_, token), view in zip(load.users, views, strict=True):

            def exact(token: str = token, view: LiveView = view) -> bool:
                status, body = load.call("GET", f"/v1/feed?limit={LIMIT}", token)
                assert status == 200
                expected = [item["id"] for item in body["items"]]
                assert view.ordered() == expected, f"{view.ordered()} != {expected}"
                return True

            wait(exact, 180, "a stream's view never matched its feed", interval=0.5)
            assert view.duplicates == []
        assert sum(len(v.events) for v in views) > 0
    finally:
        for v in views:
            v.close()
        stream.stop()
