"""Run the stream process: ``python -m feedline.stream`` (the Procfile's ``stream:``).

uvicorn serves the ASGI app on one event loop. On SIGTERM or SIGINT every stream is ended
first (a clean end of the response: clients reconnect, to another process or this one once
it is back, with their Last-Event-ID), then uvicorn closes the listener and exits.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import socket
from types import FrameType

import uvicorn

from feedline.db import Database
from feedline.readmodel.model import read_model
from feedline.settings import load
from feedline.stream.app import StreamApp

GRACEFUL_S = 5  # streams end at once; this bounds a response caught mid-write


class StreamServer(uvicorn.Server):
    """uvicorn, ending every stream as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, app: StreamApp):
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.close()
        super().handle_exit(sig, frame)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load()
    settings.require_production_ready()
    # No near cache: its invalidations come on another connection than the notices, so a
    # re-read on a notice could be served the window the notice's event replaced.
    reads = dataclasses.replace(
        settings.reads,
        redis_timeout_s=settings.stream.redis_timeout_s,
        near_cache_size=0,
        near_cache_pages=0,
    )
    settings = dataclasses.replace(settings, reads=reads)
    db = Database(settings.postgres)
    app = StreamApp(settings, read_model(settings, db), db)
    s = settings.stream
    config = uvicorn.Config(
        app,
        http="httptools",  # C parser and framing: a heartbeat costs ~55 us, not ~77 (h11)
        ws="none",
        lifespan="on",
        access_log=False,  # a ticket is one-use, but no URL is logged all the same
        timeout_graceful_shutdown=GRACEFUL_S,
        backlog=4096,  # a reconnect storm of thousands of clients at once
        log_config=None,
    )
    gc.freeze()  # what start-up made is permanent: keep it out of every collection
    StreamServer(config, app).run(sockets=[listener(s.host, s.port, s.socket_send_buffer)])


def listener(host: str, port: int, send_buffer: int) -> socket.socket:
    """Bind the listening socket ourselves: accepted sockets inherit its SO_SNDBUF."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":
    main()
