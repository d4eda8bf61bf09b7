"""The ``feedline`` command: a thin dispatcher to the modules that do the work.

Add a subcommand by writing a ``_cmd_<name>(settings, args) -> int`` and registering it in
``_parser()``. Expected failures (any FeedlineError) print one line on stderr and exit 2;
``--verbose`` shows tracebacks and debug logs instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from feedline import settings as settings_mod
from feedline.errors import FeedlineError

logger = logging.getLogger(__name__)


def _cmd_migrate(settings, args) -> int:
    from feedline.migrate import migrate

    settings.require_production_ready(uses=("owner",))
    applied = migrate(settings)
    print("applied " + ", ".join(applied) if applied else "schema up to date")
    return 0


def _cmd_connector(settings, args) -> int:
    """Create the CDC topics, then register the connector and wait until it runs."""
    from feedline.connector import register, topics

    settings.require_production_ready(uses=("replication",))
    timeout = settings.stack.start_timeout_s
    topics.ensure_topics(settings, timeout)
    register.register(settings, timeout)
    register.wait_running(settings, timeout)
    print(f"connector {settings.connect.connector_name}: RUNNING")
    return 0


def _cmd_stack(settings, args) -> int:
    from feedline.stack import app, lifecycle

    if args.action == "up":
        lifecycle.up(settings)
        if args.app:
            app.up(settings)
    elif args.action == "down":
        lifecycle.down(settings)
    elif args.action == "status":
        lifecycle.status(settings)
    elif args.action == "clean":
        lifecycle.clean(settings)
    return 0


def _redis(settings) -> Any:
    import redis

    return redis.Redis.from_url(settings.redis.url, socket_timeout=2, socket_connect_timeout=2)


def _quiet_driver() -> None:
    """Keep the Cassandra driver's connection chatter out of the report."""
    logging.getLogger("cassandra").setLevel(logging.ERROR)


def _user_ids(args) -> list[int] | None:
    return args.user or None


def _cmd_verify(settings, args) -> int:
    """Print each difference, then a summary; exit 1 if there is any (see feedline.verify)."""
    from feedline import verify

    _quiet_driver()
    progress = False if args.no_progress else None
    users = _user_ids(args)
    if args.wait:

        def attempt(report) -> None:
            if not report.clean:
                print(f"  {report.summary()}; re-checking", file=sys.stderr)

        report = verify.verify_until_clean(
            settings, users, args.wait, progress=progress, redis_client=_redis(settings),
            on_attempt=attempt,
        )  # fmt: skip
        for difference in report.differences:
            print(difference)
    else:
        report = verify.verify(
            settings, users, progress=progress, redis_client=_redis(settings), on_difference=print
        )
    if report.total > len(report.differences) and args.wait:
        print(f"... and {report.total - len(report.differences)} more")
    print(report.summary())
    return 0 if report.clean else 1


def _cmd_rebuild(settings, args) -> int:
    from feedline.rebuild import rebuild

    _quiet_driver()
    progress = False if args.no_progress else None
    report = rebuild(settings, _user_ids(args), progress=progress, redis_client=_redis(settings))
    print(report.summary())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedline", description="Feedline commands")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs, tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending schema migrations (PostgreSQL, Cassandra)")
    sub.add_parser("connector", help="create the CDC topics and register the connector")
    stack = sub.add_parser("stack", help="run the local stack without Docker")
    stack.add_argument("action", choices=["up", "down", "status", "clean"])
    stack.add_argument("--app", action="store_true", help="with up: also start the Procfile")
    verify = sub.add_parser(
        "verify", help="compare the read model (Cassandra, cached Redis entries) with PostgreSQL"
    )
    verify.add_argument("--user", type=int, action="append", metavar="ID",
                        help="check only this user's partitions (repeatable)")  # fmt: skip
    verify.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="re-check until clean or this many seconds passed")  # fmt: skip
    verify.add_argument("--no-progress", action="store_true", help="no progress bar")
    rebuild = sub.add_parser("rebuild", help="rebuild the read model from PostgreSQL")
    scope = rebuild.add_mutually_exclusive_group(required=True)
    scope.add_argument("--user", type=int, action="append", metavar="ID",
                       help="rebuild this user's partitions (repeatable)")  # fmt: skip
    scope.add_argument("--all", action="store_true", help="every user, and orphan partitions")
    rebuild.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


COMMANDS = {
    "migrate": _cmd_migrate,
    "connector": _cmd_connector,
    "stack": _cmd_stack,
    "verify": _cmd_verify,
    "rebuild": _cmd_rebuild,
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the subcommand, and turn expected failures into one line."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s" if not args.verbose else "%(asctime)s %(name)s %(message)s",
    )
    try:
        return COMMANDS[args.command](settings_mod.load(), args)
    except FeedlineError as exc:
        if args.verbose:
            raise
        print(f"feedline {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives until exit)
        return 0
    except KeyboardInterrupt:
        print(f"feedline {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
