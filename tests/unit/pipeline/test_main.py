"""The pipeline process's graceful stop: main waits at least as long as a drain may take."""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import pykka
import pytest

from feedline import settings as settings_mod
from feedline.actors.epoch import RestartEpoch
from feedline.actors.messages import Shutdown
from feedline.pipeline import main, tree
from feedline.pipeline.metrics import PipelineMetrics
from feedline.settings import PipelineSettings
from feedline.supervisors import ChildSpec, SupervisedActor, Supervisor, launch


class SlowDrain(SupervisedActor):
    """Answer Shutdown only after ``drain_s``: a drain that uses its whole bound."""

    def __init__(self, drain_s: float, *, link: Any = None):
        super().__init__(link=link)
        self.drain_s = drain_s
        self.answered = threading.Event()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Shutdown):
            threading.Event().wait(self.drain_s)
            message.reply.set(True)
            self.answered.set()


def _consumer_spec(settings: settings_mod.Settings) -> ChildSpec:
    _, root = tree.build_root(settings, PipelineMetrics(), RestartEpoch())
    consumers = next(c for c in root["children"] if c.id == "consumers")
    return next(c for c in consumers.kwargs["children"] if c.id == "kafka-consumer")


@pytest.mark.parametrize("drain_s", [30.0, 5.0, 120.0])
def test_every_stop_bound_covers_the_drain_timeout_the_consumer_is_given(drain_s: float) -> None:
    settings = settings_mod.load()
    settings = dataclasses.replace(
        settings, pipeline=dataclasses.replace(settings.pipeline, drain_timeout_s=drain_s)
    )
    spec = _consumer_spec(settings)
    bounds = main.stop_bounds(settings.pipeline)

    assert spec.kwargs["drain_timeout_s"] == drain_s
    assert bounds.consumer_s > drain_s, "main gives up on the consumer before its drain can end"
    assert spec.shutdown > drain_s, "the supervisor abandons the consumer mid-drain"
    assert bounds.total_s > bounds.consumer_s + bounds.tree_s, "the watchdog cuts the stop short"


def test_shutdown_waits_out_a_drain_that_takes_its_whole_bound(caplog) -> None:
    bounds = main.stop_bounds(PipelineSettings(drain_timeout_s=1.0))
    root = launch(
        ChildSpec(
            id="root",
            actor=Supervisor,
            kwargs={
                "name": "root",
                "children": [
                    ChildSpec(id="kafka-consumer", actor=SlowDrain, kwargs={"drain_s": 1.0})
                ],
                "on_escalate": lambda _e: None,
            },
        )
    )
    try:
        with caplog.at_level(logging.WARNING, logger=main.__name__):
            main.shutdown(root, bounds)
        assert "did not drain cleanly" not in caplog.text
        assert not root.is_alive()
    finally:
        pykka.ActorRegistry.stop_all(block=True, timeout=5)
