"""Live feeds over SSE (issue 18): delivery latency under load, idle streams, reconnect storm.

A stream process (``python -m feedline.stream``) runs for the bench on ``STREAM_PORT``
(this run's keyspace and Redis db, heartbeat every 15 s), started afresh for each part and
stopped in ``finally``. Its clients are ``bench.sse_client``'s raw-socket SSE clients, all
in one child process whose own CPU is reported (it must not be the bottleneck).

Delivery: ``stream_clients`` users (each following ``stream_follows`` others of them,
seeded in PostgreSQL and applied by the bench pipeline before anything is measured) each
hold one stream while their posts go through the bench API at each of ``stream_rates``
(open loop, authors in turn, so an author posts at most once every N / rate seconds). A
second child process subscribed to the notice channel notes when each ``shard A S MS`` notice
arrives (the pipeline publishes it once the post's Cassandra writes and cache deletes are
done). For every ``item`` event a client gets for one of those posts: notice -> event (the
stream's share; goal p99 <= 100 ms) and API 2xx -> event (end to end), beside 2xx ->
notice (the pipeline's share, the baseline). Every post must reach each of its author's
connected followers and the author once: missing and repeated deliveries are counted. The
stall probe (bench/stall_probe.py) runs alongside each rate.

Scale: ``stream_idle`` other users, each following one of ``stream_idle_authors`` authors
who posted two shards, open a stream each (in batches of 1,000) on a fresh stream process
and get those two items; then the process's RSS (VmRSS) and its CPU (utime + stime) over
``stream_idle_s`` of idle streams (heartbeats only), beside the same process before any
stream. Reconnect storm: every stream is closed at once; each author posts once through the
API meanwhile (the bench pipeline is waited for, so it is in the feeds); then every client
reconnects at once with its Last-Event-ID. Timed: all open again, and all caught up (each
got the one post it missed); every client must get exactly that one item, nothing else.
"""

from __future__ import annotations

import bisect
import json
import logging
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from typing import Any

import psycopg2.extras

from bench import seed, stall_probe
from bench.client import Http, achieved_rate, open_loop
from bench.context import Ctx
from bench.env import PIPELINE_PORT, STREAM_PORT, WEB_PORT, wait_caught_up
from bench.figures import Figure
from bench.procs import BenchProcess
from bench.resources import MIB
from bench.sse_client import Fleet, Notices
from bench.stats import percentile
from feedline import notices

logger = logging.getLogger("bench")
LIMIT = 20  # the streams' view: GET /v1/feed?limit=20
GOAL_DELIVERY_S = 0.100  # notice -> client event, p99
GOAL_RSS_MIB = 300.0  # 10,000 idle streams
GOAL_IDLE_CPU = 5.0  # % of a core, 10,000 idle streams
SEEDED_POSTS = 2  # per idle author, before the streams open
OPEN_BATCH = 1000  # the first connects go this many at a time (the storm: all at once)
SETTLE_S = 30.0  # after a load: wait this long at most for the last deliveries
SETTLE_QUIET_S = 5.0  # ... or until nothing arrived for this long
QUIET_S = 2.0  # after the storm's catch-up: time for anything sent twice to arrive
BASE_IDLE_S = 10.0  # the stream process's CPU with no stream, at most this long


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    env, z = ctx.env, ctx.sizes
    settings = env.settings
    readers = seed.create_users(settings, f"b{env.run_id}l", z.stream_clients)
    edges = seed.follow_graph(settings, readers, z.stream_follows, ctx.rng)
    authors = seed.create_users(settings, f"b{env.run_id}a", z.stream_idle_authors)
    idle = seed.create_users(settings, f"b{env.run_id}i", z.stream_idle)
    follows = {u.id: authors[i % len(authors)].id for i, u in enumerate(idle)}
    _seed_idle(settings, follows, [a.id for a in authors])
    waited = wait_caught_up(PIPELINE_PORT, timeout=300)
    details: dict[str, Any] = {"seeded_wait_s": round(waited, 1)}
    proc = _stream_process(env, "stream")
    try:
        proc.start()
        details["delivery"] = _delivery(ctx, proc, readers, edges)
    finally:
        proc.stop()
    proc = _stream_process(env, "stream-idle")
    try:
        proc.start()
        details["scale"] = _scale(ctx, proc, authors, idle, follows)
    finally:
        proc.stop()
    return _figures(z, details), details


def _stream_process(env: Any, name: str) -> BenchProcess:
    extra = {"FEEDLINE_STREAM_PORT": str(STREAM_PORT)}
    argv = [sys.executable, "-m", "feedline.stream"]
    return BenchProcess(name, argv, env.child_env(**extra), env.work / f"{name}.log", STREAM_PORT)


def _seed_idle(settings: Any, follows: dict[int, int], authors: list[int]) -> None:
    """Each idle user follows their author; each author posts SEEDED_POSTS shards (SQL)."""
    with seed.pg_connect(settings) as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO followers (follower_id, followee_id) VALUES %s",
            sorted(follows.items()),
            page_size=1000,
        )
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO shards (author_id, body) VALUES %s",
            [(a, f"idle {k}") for a in authors for k in range(SEEDED_POSTS)],
        )
    conn.close()


def _health() -> dict:
    url = f"http://127.0.0.1:{STREAM_PORT}/health"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _wait_subscribed(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not _health()["notices_subscribed"]:
        if time.monotonic() > deadline:
            raise RuntimeError("stream process not subscribed to notices")
        time.sleep(0.1)


def _cpu_pct(proc_cpu: tuple[float, float], wall: tuple[float, float]) -> float | None:
    span = wall[1] - wall[0]
    return round(100 * (proc_cpu[1] - proc_cpu[0]) / span, 2) if span > 0 else None


# -- delivery ----------------------------------------------------------------------------


def _delivery(ctx: Ctx, proc: BenchProcess, readers: list, edges: set) -> dict:
    z = ctx.sizes
    _wait_subscribed()
    ctx.sampler.record_idle({"stream": proc})
    tokens = {u.id: u.token for u in readers}
    followers_of: dict[int, list[int]] = defaultdict(list)
    for f, e in edges:
        followers_of[e].append(f)
    order = [u.id for u in readers]
    ctx.rng.shuffle(order)
    fleet = Fleet(STREAM_PORT)
    out: dict[str, Any] = {"clients": len(readers), "follows_each": z.stream_follows}
    try:
        opened = fleet.open([(u.id, u.token, None) for u in readers], LIMIT, OPEN_BATCH)
        out["open"] = {k: v for k, v in opened.items() if k != "start"}
        if opened["open"] < len(readers):
            raise RuntimeError(f"only {opened['open']} of {len(readers)} streams opened")
        time.sleep(1.0)  # the heads (seeded feeds) are sent
        fleet.take()
        out["rates"] = {}
        for rate in z.stream_rates:
            wait_caught_up(PIPELINE_PORT)
            out["rates"][rate] = _one_rate(ctx, proc, fleet, rate, order, tokens, followers_of)
        out["stream_health"] = _health()
    finally:
        fleet.stop()
    return out


def _one_rate(ctx, proc, fleet, rate, order, tokens, followers_of) -> dict:
    z = ctx.sizes
    listener = Notices(ctx.env.settings.redis.url, notices.CHANNEL)
    posted: list[tuple[int, int, float, float]] = []  # shard, author, sent, 2xx

    def op(http: Http, i: int) -> tuple[bool, Any]:
        author = order[i % len(order)]
        sent = time.monotonic()
        r = http.call("POST", "/v1/shards", tokens[author], {"body": "live"})
        if r.status != 201:
            return False, r.status
        return True, (r.body["id"], author, sent, time.monotonic())

    events: list = []
    try:
        c0 = fleet.take()["cpu_s"], proc.cpu_s(), time.monotonic()
        with (
            ctx.sampler.phase("stream delivery", {"stream": proc}),
            stall_probe.alongside(z.stream_seconds) as unit,
        ):
            results = open_loop(WEB_PORT, op, rate, z.stream_seconds, threads=32)
        posted = [r.info for r in results if r.ok]
        want = sum(len(followers_of[a]) + 1 for _, a, _, _ in posted)
        deadline, last = time.monotonic() + SETTLE_S, time.monotonic()
        taken: dict = {}
        while time.monotonic() < deadline and time.monotonic() - last < SETTLE_QUIET_S:
            taken = fleet.take()
            if taken["events"]:
                events += taken["events"]
                last = time.monotonic()
            if len(events) >= want:
                break
            time.sleep(0.25)
        c1 = taken["cpu_s"], proc.cpu_s(), time.monotonic()
    finally:
        seen = listener.stop()
    return {
        **_delivery_summary(rate, results, posted, events, seen, followers_of),
        "client_cpu_pct": _cpu_pct((c0[0], c1[0]), (c0[2], c1[2])),
        "stream_cpu_pct": _cpu_pct((c0[1], c1[1]), (c0[2], c1[2])),
        "cpu_unit": unit,
    }


def _delivery_summary(rate, results, posted, events, seen, followers_of) -> dict:
    """Match each delivered item to its post and that post's notice; count what went wrong."""
    notice_at: dict[int, list[float]] = defaultdict(list)
    for author, at in seen:
        notice_at[author].append(at)
    by_shard = {sid: (author, sent, ok) for sid, author, sent, ok in posted}
    pipeline, to_event, e2e = [], [], []
    noticed: dict[int, float | None] = {}
    for sid, (author, sent, ok) in by_shard.items():
        times = notice_at.get(author, [])
        k = bisect.bisect_left(times, sent)  # authors post in turn: the first after sending
        noticed[sid] = times[k] if k < len(times) else None
        if noticed[sid] is not None:
            pipeline.append(noticed[sid] - ok)
    got: Counter = Counter()
    deletes = 0
    for key, kind, sid, at in events:
        if kind != "item":
            deletes += 1
            continue
        if sid not in by_shard:
            continue
        got[(key, sid)] += 1
        e2e.append(at - by_shard[sid][2])
        if noticed[sid] is not None:
            to_event.append(at - noticed[sid])
    expected = {(f, sid) for sid, (a, _, _) in by_shard.items() for f in [*followers_of[a], a]}
    missing = expected - set(got)
    below = sum(_below_view(events, reader, sid, noticed[sid]) for reader, sid in missing)
    ms = lambda v: None if v is None else round(1000 * v, 2)  # noqa: E731
    return {
        "target": rate,
        "sent": len(results),
        "ok": len(posted),
        "achieved": achieved_rate(results),
        "errors": Counter(str(r.info) for r in results if not r.ok),
        "notices_matched": sum(v is not None for v in noticed.values()),
        "deliveries_expected": len(expected),
        "deliveries": sum(got.values()),
        "missing": len(missing) - below,
        "missing_below_view": below,
        "repeated": sum(n - 1 for n in got.values() if n > 1),
        "unexpected": len(set(got) - expected),
        "delete_events": deletes,
        **{f"notice_to_event_{q}_ms": ms(percentile(to_event, q)) for q in (50, 99)},
        "notice_to_event_max_ms": ms(max(to_event, default=None)),
        **{f"e2e_{q}_ms": ms(percentile(e2e, q)) for q in (50, 99)},
        **{f"pipeline_{q}_ms": ms(percentile(pipeline, q)) for q in (50, 99)},
    }


def _below_view(events: list, reader: int, sid: int, noticed: float | None) -> bool:
    """Whether a post the reader never got had left their view before it could be sent:
    by the first event the reader got after the post's notice (the re-read the notice
    caused), they had got LIMIT newer items (shard id order), so ``GET /v1/feed?limit=``
    would not show it either. Costly, but only run for the few deliveries missing."""
    if noticed is None:
        return False
    mine = sorted((at, s) for key, kind, s, at in events if key == reader and kind == "item")
    after = [at for at, _ in mine if at >= noticed]
    if not after:
        return False
    newer = sum(1 for at, s in mine if s > sid and at <= after[0] + 0.05)
    return newer >= LIMIT


# -- scale: idle streams and a reconnect storm --------------------------------------------


def _scale(ctx: Ctx, proc: BenchProcess, authors: list, idle: list, follows: dict) -> dict:
    z = ctx.sizes
    _wait_subscribed()
    base_s = min(BASE_IDLE_S, z.stream_idle_s)
    rss0 = proc.rss_bytes()
    cpu0, t0 = proc.cpu_s(), time.monotonic()
    time.sleep(base_s)
    out: dict[str, Any] = {
        "streams": len(idle),
        "authors": len(authors),
        "rss_no_stream_mib": round(rss0 / MIB, 1),
        "cpu_no_stream_pct": _cpu_pct((cpu0, proc.cpu_s()), (t0, time.monotonic())),
        "heartbeat_s": 15.0,
    }
    fleet = Fleet(STREAM_PORT)
    try:
        with ctx.sampler.phase("stream idle streams", {"stream": proc}):
            opened = fleet.open([(u.id, u.token, None) for u in idle], LIMIT, OPEN_BATCH)
            if opened["open"] < len(idle):
                raise RuntimeError(f"only {opened['open']} of {len(idle)} streams opened")
            heads = {u.id: SEEDED_POSTS for u in idle}
            fleet.wait_items(heads, 180)
            first = fleet.take()
            out["first_open"] = {
                **{k: v for k, v in opened.items() if k != "start"},
                "caught_up_s": _caught_up(first["events"], heads, opened["start"]),
                "items": len(first["events"]),
            }
            time.sleep(min(2.0, z.stream_idle_s))  # the last catch-up reads end
            fleet.take()
            out["health_before_idle"] = _health()
            rss_a = proc.rss_bytes()
            h0 = fleet.take()
            cpu0, t0 = proc.cpu_s(), time.monotonic()
            time.sleep(z.stream_idle_s)
            cpu1, t1 = proc.cpu_s(), time.monotonic()
            h1 = fleet.take()
            out["idle"] = {
                "seconds": round(t1 - t0, 1),
                "rss_mib": round(max(rss_a, proc.rss_bytes()) / MIB, 1),
                "cpu_pct": _cpu_pct((cpu0, cpu1), (t0, t1)),
                "client_cpu_pct": _cpu_pct((h0["cpu_s"], h1["cpu_s"]), (t0, t1)),
                "heartbeats": h1["heartbeats"] - h0["heartbeats"],
                "events": len(h1["events"]),
                "streams_open": h1["open"],
            }
            out["storm"] = _storm(ctx, proc, fleet, authors, idle, follows, h1["last_ids"])
    finally:
        fleet.stop()
    return out


def _storm(ctx, proc, fleet, authors, idle, follows, last_ids) -> dict:
    closed = fleet.close_all()
    missing_ids = sum(1 for u in idle if not last_ids.get(u.id))
    http = Http(WEB_PORT)
    new: dict[int, int] = {}
    for a in authors:
        r = http.call("POST", "/v1/shards", a.token, {"body": "while you were away"})
        if r.status != 201:
            raise RuntimeError(f"storm post: {r.status} {r.body}")
        new[a.id] = r.body["id"]
    wait_caught_up(PIPELINE_PORT, max_lag=0)
    streams_left = _health()["streams"]
    specs = [(u.id, u.token, last_ids.get(u.id)) for u in idle]
    cpu0 = proc.cpu_s()
    with ctx.sampler.phase("stream reconnect storm", {"stream": proc}):
        opened = fleet.open(specs, LIMIT, 0)
        expected = {u.id: 1 for u in idle}
        fleet.wait_items(expected, 180)
        time.sleep(QUIET_S)  # anything sent twice arrives meanwhile
    taken = fleet.take()
    got: dict[int, list[int]] = defaultdict(list)
    for key, kind, sid, _ in taken["events"]:
        got[key].append(sid if kind == "item" else -sid)
    wrong = [u.id for u in idle if got.get(u.id) != [new[follows[u.id]]]]
    return {
        "closed_s": round(closed["closed_s"], 3),
        "streams_left_on_server_before": streams_left,
        "clients_without_last_id": missing_ids,
        "posts_while_away": len(new),
        "open": opened["open"],
        "errors": opened["errors"],
        "failures": opened["failures"],
        "all_open_s": opened["all_open_s"],
        "caught_up_s": _caught_up(taken["events"], expected, opened["start"]),
        "stream_cpu_s": round(proc.cpu_s() - cpu0, 2),
        "clients_wrong": len(wrong),
        "wrong_sample": {k: got.get(k) for k in wrong[:5]},
        "lost": sum(1 for u in idle if new[follows[u.id]] not in got.get(u.id, [])),
        "repeated_or_extra": sum(max(0, len(got.get(u.id, [])) - 1) for u in idle),
    }


def _caught_up(events: list, expected: dict[int, int], start: float) -> float | None:
    """Seconds from ``start`` until every key had its expected count of item events."""
    times: dict[int, list[float]] = defaultdict(list)
    for key, kind, _, at in events:
        if kind == "item":
            times[key].append(at)
    done = []
    for key, n in expected.items():
        if len(times[key]) < n:
            return None
        done.append(sorted(times[key])[n - 1])
    return round(max(done) - start, 3) if done else None


# -- figures -------------------------------------------------------------------------------


def _figures(z: Any, details: dict) -> list[Figure]:
    figures: list[Figure] = []
    d = details["delivery"]
    n = d["clients"]
    goal_rate = max(z.stream_rates)
    for rate, r in d["rates"].items():
        sent = f"{r['achieved']:.0f}/s" if r["achieved"] else "n/a"
        where = f"{n:,} streams, {rate} posts/s (sent {sent})"
        s = lambda v: None if v is None else v / 1000  # noqa: E731
        for q in (50, 99):
            fig = Figure(
                f"stream.{rate}.notice_to_event.p{q}",
                f"notice (pipeline write done) -> item event at the client, p{q}, {where}",
                r[f"notice_to_event_{q}_ms"],
                "ms",
            )
            if q == 99 and rate == goal_rate:
                fig.goal = f"≤ {GOAL_DELIVERY_S * 1000:.0f} ms"
                fig.met = (
                    fig.value is not None
                    and fig.value <= GOAL_DELIVERY_S * 1000
                    and (r["achieved"] or 0) >= 0.9 * rate
                    and r["missing"] == 0
                    and r["repeated"] == 0
                )
            if q == 99:
                fig.note = (
                    f"missing {r['missing']}, repeated {r['repeated']}"
                    f" (and {r['missing_below_view']} pushed below the view of {LIMIT})"
                )
            figures.append(fig)
        for q in (50, 99):
            figures.append(
                Figure(
                    f"stream.{rate}.e2e.p{q}",
                    f"API 2xx -> item event at the client, p{q}, {where}",
                    s(r[f"e2e_{q}_ms"]),
                    "s",
                    s(r[f"pipeline_{q}_ms"]),
                    "pipeline: 2xx -> notice",
                )
            )
        unit = r.get("cpu_unit") or {}
        figures.append(
            Figure(
                f"stream.{rate}.cpu_unit_p99",
                f"stall probe during that {rate} posts/s run: CPU ms of a ~1 ms unit, p99",
                unit.get("p99_ms"),
                "ms",
                unit.get("p50_ms"),
                "its p50",
            )
        )
        figures.append(
            Figure(
                f"stream.{rate}.client_cpu",
                f"bench SSE clients' process CPU during that {rate} posts/s run",
                r["client_cpu_pct"],
                "% of a core",
                r["stream_cpu_pct"],
                "the stream process, same window",
            )
        )
    sc = details["scale"]
    m = sc["streams"]
    idle, storm, first = sc["idle"], sc["storm"], sc["first_open"]
    figures.append(
        Figure(
            "stream.idle.rss",
            f"stream process RSS with {m:,} idle streams",
            idle["rss_mib"],
            "MiB",
            sc["rss_no_stream_mib"],
            "the same process, no stream",
            goal=f"≤ {GOAL_RSS_MIB:.0f} MiB",
            met=idle["rss_mib"] <= GOAL_RSS_MIB and idle["streams_open"] == m,
        )
    )
    figures.append(
        Figure(
            "stream.idle.cpu",
            f"stream process CPU, {m:,} idle streams over {idle['seconds']:g} s"
            f" (heartbeat every {sc['heartbeat_s']:g} s)",
            idle["cpu_pct"],
            "% of a core",
            sc["cpu_no_stream_pct"],
            "the same process, no stream",
            goal=f"≤ {GOAL_IDLE_CPU:g}% of a core",
            met=idle["cpu_pct"] is not None
            and idle["cpu_pct"] <= GOAL_IDLE_CPU
            and idle["streams_open"] == m,
        )
    )
    figures.append(
        Figure(
            "stream.storm.all_open_s",
            f"reconnect storm: {m:,} streams closed at once, reopened at once with"
            " Last-Event-ID: all open",
            storm["all_open_s"],
            "s",
            first["all_open_s"],
            f"first open, {OPEN_BATCH:,} at a time",
        )
    )
    figures.append(
        Figure(
            "stream.storm.caught_up_s",
            "reconnect storm: all open and caught up (each got the one post it missed)",
            storm["caught_up_s"],
            "s",
            first["caught_up_s"],
            f"first open and its {SEEDED_POSTS} items, {OPEN_BATCH:,} at a time",
        )
    )
    figures.append(
        Figure(
            "stream.storm.wrong",
            "reconnect storm: streams that lost, repeated or got an extra item",
            float(storm["clients_wrong"]),
            "streams",
            goal="0",
            met=storm["clients_wrong"] == 0 and storm["open"] == m,
            note=f"lost {storm['lost']}, repeated or extra {storm['repeated_or_extra']}",
        )
    )
    return figures
