"""Run the pipeline process: start the actor tree and the health server, stop on SIGTERM.

Graceful stop: the KafkaConsumer stops polling, drains every partition's in-flight
events, stores and commits their offsets and leaves the group; then the tree stops in
reverse start order. Anything still unfinished when the bound runs out is simply re-read
by the next owner of its partition (at-least-once), so a forced exit loses nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import pykka

from feedline.actors.epoch import RestartEpoch
from feedline.actors.messages import Shutdown
from feedline.pipeline import tree
from feedline.pipeline.health_server import HealthServer, find_actor
from feedline.pipeline.metrics import PipelineMetrics
from feedline.settings import Settings

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 20.0  # each of: draining, stopping the tree
SHUTDOWN_BOUND_S = 45.0  # the whole stop, whatever is stuck (e.g. a writer waiting out an outage)


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
    logger.info("stopping: draining partitions and committing offsets")
    watchdog = threading.Timer(SHUTDOWN_BOUND_S, _force_exit)
    watchdog.daemon = True
    watchdog.start()
    shutdown(root)
    server.stop()
    return 0


def shutdown(root: Any) -> None:
    """Drain and commit through the consumer, then stop the tree in reverse order."""
    try:
        consumer = find_actor(root, "kafka-consumer")
        if consumer is not None:
            reply = pykka.ThreadingFuture()
            consumer.tell(Shutdown(reply))
            reply.get(timeout=SHUTDOWN_TIMEOUT_S)
    except (pykka.Timeout, pykka.ActorDeadError) as exc:
        logger.warning("consumer did not drain cleanly: %r", exc)
    try:
        root.stop(block=True, timeout=SHUTDOWN_TIMEOUT_S)
    except (pykka.Timeout, pykka.ActorDeadError) as exc:
        logger.warning("tree did not stop cleanly: %r", exc)


def _force_exit() -> None:
    """End a stop that overran its bound; unfinished events are re-read on restart."""
    logger.error("graceful stop took over %.0fs; exiting now", SHUTDOWN_BOUND_S)
    logging.shutdown()
    os._exit(0)


def install_signal_handlers(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT ask for a graceful stop."""

    def handler(signum: int, _frame: Any) -> None:
        logger.info("received signal %d", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
