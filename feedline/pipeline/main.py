"""Run the pipeline process: start the actor tree and the health server, stop on SIGTERM.

Graceful stop: the KafkaConsumer stops polling, drains every partition's in-flight
events (within ``FEEDLINE_DRAIN_TIMEOUT_S``), stores and commits their offsets and leaves
the group; then the tree stops in reverse start order. Every wait here is derived from
the drain timeout (``stop_bounds``), so main never gives up on a drain that is still
allowed to run. Anything still unfinished when the bound runs out is simply re-read by
the next owner of its partition (at-least-once), so a forced exit loses nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

import pykka

from feedline.actors.epoch import RestartEpoch
from feedline.actors.messages import Shutdown
from feedline.pipeline import tree
from feedline.pipeline.health_server import HealthServer, find_actor
from feedline.pipeline.metrics import PipelineMetrics
from feedline.settings import PipelineSettings, Settings

logger = logging.getLogger(__name__)

CLOSE_MARGIN_S = 10.0  # after the drain: commit, leave the group, close the client
TREE_STOP_S = 20.0  # stopping the actor tree once the consumer is done
WATCHDOG_MARGIN_S = 5.0


@dataclass(frozen=True)
class StopBounds:
    """How long a graceful stop waits for each step, all derived from the drain timeout."""

    consumer_s: float  # the consumer's Shutdown: drain, commit, close
    tree_s: float  # stopping the tree afterwards
    total_s: float  # the watchdog: the whole stop, whatever is stuck


def stop_bounds(pipeline: PipelineSettings) -> StopBounds:
    """Return the stop's bounds for ``pipeline.drain_timeout_s`` (55 s in all by default)."""
    consumer_s = pipeline.drain_timeout_s + CLOSE_MARGIN_S
    return StopBounds(
        consumer_s=consumer_s,
        tree_s=TREE_STOP_S,
        total_s=consumer_s + TREE_STOP_S + WATCHDOG_MARGIN_S,
    )


def run(settings: Settings, stop: threading.Event) -> int:
    """Run until ``stop`` is set; return the process exit code."""
    metrics = PipelineMetrics()
    epoch = RestartEpoch()
    pipeline = settings.pipeline
    # Bind the health port before starting any actor: a taken port fails fast, instead
    # of leaving a running actor tree in a process that cannot report on it.
    server = HealthServer(
        pipeline.health_host, pipeline.health_port, metrics, pipeline.fault_injection
    )
    try:
        root = tree.start(settings, metrics, epoch)
    except BaseException:
        server.stop()
        raise
    server.start(root)
    logger.info(
        "pipeline running; health on http://%s:%d/health/actors",
        pipeline.health_host,
        server.port,
    )
    while not stop.wait(1.0):
        pass
    bounds = stop_bounds(pipeline)
    logger.info(
        "stopping: draining partitions and committing offsets (at most %.0fs)", bounds.total_s
    )
    watchdog = threading.Timer(bounds.total_s, _force_exit, args=(bounds.total_s,))
    watchdog.daemon = True
    watchdog.start()
    shutdown(root, bounds)
    server.stop()
    return 0


def shutdown(root: Any, bounds: StopBounds) -> None:
    """Drain and commit through the consumer, then stop the tree in reverse order."""
    try:
        consumer = find_actor(root, "kafka-consumer")
        if consumer is not None:
            reply = pykka.ThreadingFuture()
            consumer.tell(Shutdown(reply))
            reply.get(timeout=bounds.consumer_s)
    except (pykka.Timeout, pykka.ActorDeadError) as exc:
        logger.warning("consumer did not drain cleanly: %r", exc)
    try:
        root.stop(block=True, timeout=bounds.tree_s)
    except (pykka.Timeout, pykka.ActorDeadError) as exc:
        logger.warning("tree did not stop cleanly: %r", exc)


def _force_exit(bound_s: float) -> None:
    """End a stop that overran its bound; unfinished events are re-read on restart."""
    logger.error("graceful stop took over %.0fs; exiting now", bound_s)
    logging.shutdown()
    os._exit(0)


def install_signal_handlers(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT ask for a graceful stop."""

    def handler(signum: int, _frame: Any) -> None:
        logger.info("received signal %d", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
