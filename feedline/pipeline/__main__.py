"""``python -m feedline.pipeline [--respawn]``: run the pipeline process (see main.py)."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from feedline import settings as settings_mod
from feedline.errors import ConfigError
from feedline.pipeline.main import install_signal_handlers, run
from feedline.pipeline.respawn import respawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m feedline.pipeline")
    parser.add_argument(
        "--respawn", action="store_true", help="restart the pipeline whenever it exits non-zero"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("cassandra").setLevel(logging.WARNING)
    settings = settings_mod.load()
    try:
        settings.require_production_ready()
    except ConfigError as exc:  # before any respawn: retrying cannot fix a setting
        print(f"feedline pipeline: {exc}", file=sys.stderr)
        return 2
    if args.respawn:
        return respawn([sys.executable, "-m", "feedline.pipeline"])
    stop = threading.Event()
    install_signal_handlers(stop)
    return run(settings, stop)


if __name__ == "__main__":
    sys.exit(main())
