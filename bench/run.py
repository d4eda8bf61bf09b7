"""Run every benchmark once against the local stack: ``python -m bench.run [--quick]``.

Order matters on two cores: the write API first (its wrk load leaves a CDC backlog the
bench pipeline absorbs while the sink benchmark runs its own pipeline), then sink, fan-out,
freshness and reads, each waiting for the bench pipeline to be caught up. Every process
this starts is stopped in ``finally``; a failing benchmark is recorded and makes the exit
status 1, the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import logging
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime

from bench import (
    cap,
    cpu,
    fanout,
    freshness,
    head_of_line,
    pull_fanout,
    reads,
    results,
    sink,
    stream,
    write_api,
)
from bench.context import QUICK, Ctx, Sizes
from bench.env import CONST_PORT, PIPELINE_PORT, WEB_PORT, BenchEnv, wait_ready
from bench.resources import RssSampler

BENCHMARKS = {
    "write_api": write_api.run,
    "sink": sink.run,
    "fanout": fanout.run,
    "pull_fanout": pull_fanout.run,
    "freshness": freshness.run,
    "reads": reads.run,
    "cpu": cpu.run,
    "cap": cap.run,
    "stream": stream.run,
    "head_of_line": head_of_line.run,
}
logger = logging.getLogger("bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes; results in var/bench")
    parser.add_argument(
        "--only", default="", help="comma-separated subset of " + ",".join(BENCHMARKS)
    )
    parser.add_argument(
        "--scratch",
        action="store_true",
        help="full sizes, results in var/bench only (trying a benchmark out)",
    )
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one of bench.context.Sizes (a tuple as 1,2,3; empty for none);"
        " implies --scratch unless --quick",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the chosen sections in today's results JSON (with a note)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(message)s")
    # SIGTERM unwinds like Ctrl-C, so ``finally`` stops every process this run started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    chosen = [b for b in (args.only.split(",") if args.only else BENCHMARKS) if b]
    started = time.monotonic()
    env = BenchEnv(quick=args.quick)
    sizes = _override(QUICK if args.quick else Sizes(), args.size)
    with _alone(env):
        doc, failed = run(env, sizes, chosen)
    doc["minutes"] = round((time.monotonic() - started) / 60, 1)
    if args.quick or args.scratch or args.size:
        path = results.write(doc, env.work, None)
    else:
        if args.merge:
            doc = _merge(doc, chosen)
        path = results.write(doc, results.RESULTS, results.MARKDOWN)
    print(results.table(doc))
    print(f"\nresults: {path}")
    return 1 if failed else 0


@contextlib.contextmanager
def _alone(env: BenchEnv) -> Iterator[None]:
    """Wait for any other bench run to finish: they share ports, a keyspace and a Redis db
    (a second run would fail on a taken port, or drop the first one's keyspace)."""
    path = env.settings.stack.var_dir / "bench.lock"
    with open(path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another bench run holds %s: waiting", path)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _override(sizes: Sizes, pairs: list[str]) -> Sizes:
    """Return ``sizes`` with ``NAME=VALUE`` pairs applied, typed like the defaults."""
    changes = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        if name not in {f.name for f in dataclasses.fields(sizes)}:
            raise SystemExit(f"bench.run: no size called {name!r}")
        default = getattr(sizes, name)
        try:
            if isinstance(default, tuple):
                changes[name] = tuple(int(v) for v in text.split(",") if v)
            else:
                changes[name] = type(default)(text)
        except ValueError:
            raise SystemExit(f"bench.run: {pair!r}: not a {_kind(default)}") from None
        if changes[name] == ():  # the benchmarks take max() of a list of rates or sizes
            raise SystemExit(f"bench.run: {pair!r}: give at least one value, comma-separated")
        values = changes[name] if isinstance(default, tuple) else (changes[name],)
        if any(v <= 0 for v in values):  # a rate of 0 divides by zero, 0 repeats runs nothing
            raise SystemExit(f"bench.run: {pair!r}: sizes and rates are above zero")
    return dataclasses.replace(sizes, **changes)


def _kind(default: object) -> str:
    if isinstance(default, tuple):
        return "comma-separated list of integers"
    return "number" if isinstance(default, int | float) else type(default).__name__


def _merge(new: dict, chosen: list[str]) -> dict:
    """Put this run's sections into today's full run, saying which run measured them."""
    path = results.RESULTS / f"{new['date'][:10]}.json"
    doc = json.loads(path.read_text())
    for name in chosen:
        doc["benchmarks"][name] = {**new["benchmarks"][name], "run_id": new["run_id"]}
    old = doc["benchmarks"].setdefault("resources", {"figures": []})
    fresh = {f["key"]: f for f in new["benchmarks"]["resources"]["figures"]}
    old["figures"] = [f for f in old["figures"] if f["key"] not in fresh] + list(fresh.values())
    said = f"{', '.join(chosen)} (and their RSS figures) were measured by run "
    notes = [n for n in doc.get("notes", []) if not n.startswith(said)]  # older merges
    merged = f"{new['run_id']} at {new['date']}, merged into run {doc['run_id']} (`--merge`)."
    doc["notes"] = [*notes, said + merged]
    return doc


def run(env: BenchEnv, sizes: Sizes, chosen: list[str]) -> tuple[dict, bool]:
    doc: dict = {
        "run_id": env.run_id,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if env.quick else "full",
        "machine": results.machine(env.settings),
        "benchmarks": {},
        "notes": [],
    }
    failed = False
    logger.info("run %s: fresh keyspace, bench group at the log end", env.run_id)
    env.reset_keyspace()
    env.ensure_dlq()
    env.start_group_at_end()
    procs = {
        "web": env.gunicorn("web", "feedline.http.app:get_app()", WEB_PORT),
        "const": env.gunicorn("const", "bench.const_app:app", CONST_PORT),
        "pipeline": env.pipeline("pipeline", PIPELINE_PORT),
    }
    try:
        for p in procs.values():
            p.start()
        wait_ready(PIPELINE_PORT, 5 * env.settings.kafka.partitions)
        sampler = RssSampler({"web": procs["web"], "pipeline": procs["pipeline"]})
        time.sleep(1.0)
        sampler.record_idle()
        ctx = Ctx(env, sizes, procs["web"], procs["const"], procs["pipeline"], sampler)
        for name in chosen:
            logger.info("benchmark %s", name)
            t0 = time.monotonic()
            try:
                figures, details = BENCHMARKS[name](ctx)
                section = {"figures": [f.to_json() for f in figures], "details": details}
            except Exception as exc:
                failed = True
                logger.error("benchmark %s failed: %s", name, traceback.format_exc())
                section = {"figures": [], "error": f"{type(exc).__name__}: {exc}"}
            section["seconds"] = round(time.monotonic() - t0, 1)
            doc["benchmarks"][name] = section
        doc["benchmarks"]["resources"] = {
            "figures": [f.to_json() for f in sampler.figures()],
            "details": {"idle_bytes": sampler.idle},
        }
    finally:
        for p in reversed(procs.values()):
            p.stop()
        env.drop_groups(env.settings.kafka.group_id)
    return doc, failed


if __name__ == "__main__":
    sys.exit(main())
