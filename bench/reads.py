"""Feed reads: ``GET /v1/feed`` from cache (hit) and from Cassandra (miss), and hit ratio.

Seeding: real users (PostgreSQL, so tokens work and users_by_id fills through CDC); their
feeds (20 items each) and a pool of shards are written straight into the bench keyspace:
building 10,000 feeds through fan-out would only measure fan-out again. Runs (wrk unless said):

- the constant endpoint (baseline);
- "hot": a few users over and over (feed window and objects cached), against the web and
  against a second web with its near cache off (``hot_redis_only``: every hit asks Redis);
- "cold": each user once after FLUSHDB of the bench Redis db (the feed window always
  misses; shared shards' objects warm up as the run goes);
- "zipf": users drawn with P(rank r) ~ 1/r over all users, measured once a warm-up has
  reached steady state (see ``_warm_up``) while users post shards through the API (each
  post invalidates a feed); hit ratio from the web's own feedline_read_cache counters;
- "pull" (issue 16): readers of 5 pull authors beside push twins holding the same items
  (``bench.pull_reads`` seeds them and checks their pages): "hot" against both webs, and
  first pages timed by a Python closed loop at 3 connections that drops the reader's feed
  window (or it and the authors' windows) before each read, every read checked to be the
  expected page and each run's drops checked against the web's cache counters.

Peak req/s use ``wrk_connections``; the miss latencies are also taken at 3 connections
(one per worker: service time, no queue), with nothing cached and with only the feed
windows dropped. During the open-loop misses ``stall_probe`` times a fixed ~1 ms of Python
CPU: its p99/p50 is how far this machine itself stretches any request's CPU at the tail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import redis
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType

from bench import pull_reads, seed, stall_probe, wrk
from bench.client import Http, open_loop
from bench.context import Ctx
from bench.env import (
    CONST_PORT,
    PIPELINE_PORT,
    REDIS_ONLY_PORT,
    WEB_PORT,
    ops_port,
    wait_caught_up,
)
from bench.figures import Figure, skipped
from bench.procs import BenchProcess
from bench.stats import median, percentile
from feedline import cache_keys, cassandra
from feedline import statements as st
from feedline.http.routes import ROUTES

SHARD_BASE = 700_000_000_000
ITEMS = 20
ZIPF_WARMUP_MAX, ZIPF_SETTLED = 4, 0.005
ZIPF_WRITES_PER_S = 50  # posts during the Zipf measurement (each invalidates a feed)
MISS_RATE = 100  # window misses/s in the open-loop miss latency run (Zipf's rate: ~30/s)
TWINS = ("push", "pull")  # bench.pull_reads: a push reader and a reader of 5 pull authors


def available() -> bool:
    return any(template == "/v1/feed" for template, _ in ROUTES)


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    if not available():
        why = "GET /v1/feed is not in feedline/http/routes.py yet"
        return [
            skipped("reads.hit.rps", "feed cache-hit req/s", "req/s", why, "≥ 0.6x ceiling"),
            skipped("reads.miss.p99", "feed cache-miss p99", "ms", why, "< 20 ms"),
            skipped("reads.zipf.hit_ratio", "hit ratio, Zipf", "", why, "≥ 0.95"),
        ], {}
    env, z = ctx.env, ctx.sizes
    users = seed.create_users(env.settings, f"b{env.run_id}d", z.read_users)
    _seed_feeds(env.settings, [u.id for u in users], ctx)
    groups = []
    if pull_reads.available(env.settings):
        groups = pull_reads.seed_groups(env.settings, f"b{env.run_id}p")
    wait_caught_up(PIPELINE_PORT)
    if groups:
        pull_reads.check_modes(env.settings, groups)
    tokens = env.work / "read-tokens.txt"
    tokens.write_text("\n".join(u.token for u in users) + "\n")
    readers = {}  # the 5-pull readers' and their push twins' tokens (wrk "hot" mode)
    for kind in TWINS if groups else ():
        readers[kind] = env.work / f"{kind}-reader-tokens.txt"
        readers[kind].write_text("".join(getattr(g, kind).token + "\n" for g in groups))
    cache = redis.Redis.from_url(env.settings.redis.url)
    d, c = z.wrk_seconds, z.wrk_connections
    runs: dict[str, list] = {
        "const": [],
        "const3": [],
        "hot": [],
        "hot_redis_only": [],
        "cold": [],
        "cold3": [],
        "window3": [],
    }
    offset = 1
    hot = [str(tokens), "hot"]
    with _redis_only_web(ctx):
        for port in (WEB_PORT, REDIS_ONLY_PORT):  # both webs merge: both readers see the page
            for g in groups:
                for kind in TWINS:
                    pull_reads.check_page(port, getattr(g, kind).token, g)
        for i in range(z.repeats):
            runs["const"].append(wrk.run(env.work, "const", CONST_PORT, d, c))
            runs["const3"].append(wrk.run(env.work, "const", CONST_PORT, d, 3))
            for name, port in (("hot", WEB_PORT), ("hot_redis_only", REDIS_ONLY_PORT)):
                wrk.run(env.work, "feed", port, 1, 2, hot)  # fill the hot users
                runs[name].append(wrk.run(env.work, "feed", port, d, c, hot))
                for kind in _twins(i) if groups else ():
                    args = [str(readers[kind]), "hot"]
                    wrk.run(env.work, "feed", port, 1, 2, args)
                    runs.setdefault(f"{kind}_{name}", []).append(
                        _all_ok(wrk.run(env.work, "feed", port, d, c, args))
                    )
    for _ in range(z.repeats):
        for name, conns in (("cold", c), ("cold3", 3)):
            cache.flushdb()
            before = _lookups()
            run = wrk.run(env.work, "feed", WEB_PORT, d, conns, [str(tokens), "cold", str(offset)])
            offset += run.requests + 2 * conns
            runs[name].append(run)
            runs.setdefault(f"{name}_hit_ratio", []).append(_hit_ratio(before, _lookups()))
    cache.flushdb()
    cold_rps = median([r.rps for r in runs["cold"]]) or 100.0
    warmup = _warm_up(env.work, tokens, len(users), cold_rps, d, c)
    before = _lookups()
    with _posting([u.token for u in users], ZIPF_WRITES_PER_S, d, ctx) as posted:
        zipf = wrk.run(env.work, "feed", WEB_PORT, d, c, [str(tokens), "zipf"])
    ratio = _hit_ratio(before, _lookups())
    # The warm-up read every user's page, so every shard and profile is cached: drop only
    # the feed windows and read users once each, the usual miss in a running service.
    # The Zipf run's posts are processed first: their fan-out is not part of a read's cost.
    details_caught_up_s = wait_caught_up(PIPELINE_PORT)
    for _ in range(z.repeats):
        _drop_feed_windows(cache)
        run = wrk.run(env.work, "feed", WEB_PORT, d, 3, [str(tokens), "cold", str(offset)])
        offset += run.requests + 6
        runs["window3"].append(run)
    # The same miss at a steady rate (open loop, latency from each request's due time): the
    # closed loop above keeps 3 misses in flight back to back, which saturates the 2 cores.
    user_tokens = [u.token for u in users]
    for _ in range(z.repeats):
        _drop_feed_windows(cache)
        # Alongside: how far the machine itself stretches CPU time meanwhile.
        with stall_probe.alongside(d) as stall:
            missed = _miss_open_loop(ctx.web, user_tokens, offset, d)
        runs.setdefault("window_open", []).append(missed)
        runs.setdefault("cpu_unit", []).append(stall)
        offset += int(MISS_RATE * d) + 1
    if groups:
        runs.update(_pull_misses(cache, groups, z.repeats, d))

    def med(name: str, attr: str) -> float | None:
        return median([getattr(r, attr) for r in runs[name]])

    const_rps = med("const", "rps")
    figures = [
        Figure(
            "reads.hit.rps",
            "feed cache-hit req/s",
            med("hot", "rps"),
            "req/s",
            const_rps,
            "constant endpoint req/s",
            "≥ 0.6x ceiling",
        ),
        Figure(
            "reads.hit_redis_only.rps",
            "feed cache-hit req/s, near cache off (every hit asks Redis)",
            med("hot_redis_only", "rps"),
            "req/s",
            const_rps,
            "constant endpoint req/s",
        ),
        Figure(
            "reads.hit.p50",
            "feed cache-hit p50",
            med("hot", "p50_ms"),
            "ms",
            med("const", "p50_ms"),
            "constant endpoint p50",
        ),
        Figure(
            "reads.hit.p99",
            "feed cache-hit p99",
            med("hot", "p99_ms"),
            "ms",
            med("const", "p99_ms"),
            "constant endpoint p99",
        ),
        Figure(
            "reads.miss.rps",
            "feed cache-miss req/s",
            med("cold", "rps"),
            "req/s",
            const_rps,
            "constant endpoint req/s",
        ),
        Figure(
            "reads.miss.p50",
            "feed cache-miss p50",
            med("cold", "p50_ms"),
            "ms",
            med("const", "p50_ms"),
            "constant endpoint p50",
        ),
        Figure(
            "reads.miss.p99",
            f"feed cache-miss p99 ({c} connections)",
            med("cold", "p99_ms"),
            "ms",
            med("const", "p99_ms"),
            "constant endpoint p99",
        ),
        Figure(
            "reads.miss.p99_3conn",
            "feed cache-miss p99, nothing cached (3 connections = workers)",
            med("cold3", "p99_ms"),
            "ms",
            med("const3", "p99_ms"),
            "constant endpoint p99, 3 connections",
            "< 20 ms",
        ),
        Figure(
            "reads.window_miss.p50_3conn",
            "feed cache-miss p50, shards and profiles cached (3 connections)",
            med("window3", "p50_ms"),
            "ms",
            med("const3", "p50_ms"),
            "constant endpoint p50, 3 connections",
        ),
        Figure(
            "reads.window_miss.p99_3conn",
            "feed cache-miss p99, shards and profiles cached (3 connections)",
            med("window3", "p99_ms"),
            "ms",
            med("const3", "p99_ms"),
            "constant endpoint p99, 3 connections",
            "< 20 ms",
        ),
        Figure(
            "reads.window_miss.p50_open",
            f"feed cache-miss p50 at {MISS_RATE} misses/s, shards and profiles cached",
            med("window_open", "p50_ms"),
            "ms",
            med("const3", "p50_ms"),
            "constant endpoint p50, 3 connections",
        ),
        Figure(
            "reads.window_miss.p99_open",
            f"feed cache-miss p99 at {MISS_RATE} misses/s, shards and profiles cached",
            med("window_open", "p99_ms"),
            "ms",
            med("const3", "p99_ms"),
            "constant endpoint p99, 3 connections",
            "< 20 ms",
        ),
        Figure(
            "reads.window_miss.web_cpu_open",
            f"web CPU per feed cache-miss at {MISS_RATE} misses/s (all workers)",
            med("window_open", "web_cpu_ms"),
            "ms",
        ),
        Figure(
            "reads.env.cpu_unit_p99",
            "machine: CPU time of a fixed ~1 ms of Python work, p99, during those misses",
            median([u.get("p99_ms") for u in runs["cpu_unit"]]),
            "ms",
            median([u.get("p50_ms") for u in runs["cpu_unit"]]),
            "the same unit's p50",
        ),
        Figure(
            "reads.zipf.hit_ratio",
            f"feed hit ratio, Zipf over {len(users):,} users",
            ratio,
            "",
            goal="≥ 0.95",
        ),
    ]
    figures[0].met = figures[0].ratio is not None and figures[0].ratio >= 0.6
    for f in figures:
        if f.goal == "< 20 ms":
            f.met = f.value is not None and f.value < 20
    figures[-1].met = ratio is not None and ratio >= 0.95
    figures += _pull_figures(runs, c) if groups else _pull_skipped()
    details = {
        k: [r if isinstance(r, float | dict | None) else r.__dict__ for r in v]
        for k, v in runs.items()
    }
    details["zipf"] = zipf.__dict__
    details["zipf_warmup_hit_ratios"] = warmup
    details["window_miss_waited_for_pipeline_s"] = details_caught_up_s
    details["zipf_concurrent_posts"] = {"target_per_s": ZIPF_WRITES_PER_S, "ok": posted()}
    return figures, details


def _warm_up(work, tokens, users: int, cold_rps: float, seconds: float, conns: int) -> list:
    """Bring a cold cache to the state a long-running service is in, then let it settle.

    With the 900 s feed TTL, a service reading ~1,000 feeds/s reads every one of these
    users several times per TTL, so in steady state a miss is a first read after an
    expiry or an invalidation. A cold cache instead misses on every user's first read,
    which a short run would mostly measure. So: one pass reading each user's feed once
    (wrk "cold" mode, long enough for all of them at the measured miss rate), then Zipf
    windows until one gains less than ``ZIPF_SETTLED`` (at most ``ZIPF_WARMUP_MAX``).
    Returns each Zipf window's hit ratio for the record.
    """
    pass_s = 1.2 * users / max(cold_rps, 1.0) + 1
    wrk.run(work, "feed", WEB_PORT, pass_s, conns, [str(tokens), "cold", "1"])
    ratios: list[float | None] = []
    for _ in range(ZIPF_WARMUP_MAX):
        before = _lookups()
        wrk.run(work, "feed", WEB_PORT, seconds, conns, [str(tokens), "zipf"])
        ratios.append(_hit_ratio(before, _lookups()))
        settled = len(ratios) >= 2 and None not in ratios[-2:]
        if settled and ratios[-1] - ratios[-2] < ZIPF_SETTLED:
            break
    return ratios


def _drop_feed_windows(cache: redis.Redis) -> None:
    """Delete every cached feed window (shards and profiles stay): the next reads miss."""
    for key in cache.scan_iter(match=cache_keys.feed("*"), count=1000):
        cache.delete(key)


@dataclasses.dataclass
class _Latency:
    p50_ms: float | None
    p99_ms: float | None
    ok: int
    sent: int
    web_cpu_ms: float | None  # the web's CPU (all workers) per request in the run


def _miss_open_loop(web: BenchProcess, tokens: list[str], offset: int, seconds: float) -> _Latency:
    """Read ``MISS_RATE`` distinct users' feeds per second (each one a window miss)."""

    def read(http: Http, i: int) -> tuple[bool, None]:
        token = tokens[(offset + i) % len(tokens)]
        return http.call("GET", "/v1/feed?limit=20", token).status == 200, None

    cpu_before = web.cpu_s()
    results = open_loop(WEB_PORT, read, MISS_RATE, seconds, threads=8)
    cpu_ms = (web.cpu_s() - cpu_before) * 1000 / len(results) if results else None
    ms = [r.latency * 1000 for r in results if r.ok]
    return _Latency(percentile(ms, 50), percentile(ms, 99), len(ms), len(results), cpu_ms)


def _twins(repeat: int) -> tuple[str, ...]:
    """The push twin and the pull reader, in turn first (drift favours neither)."""
    return TWINS if repeat % 2 == 0 else TWINS[::-1]


def _all_ok(run: wrk.WrkRun) -> wrk.WrkRun:
    """Fail on a non-2xx answer: an error page is fast and would inflate req/s."""
    if run.non2xx:
        raise RuntimeError(f"wrk saw {run.non2xx} non-2xx answers of {run.requests}")
    return run


@dataclasses.dataclass
class _Timed:
    p50_ms: float | None
    p99_ms: float | None
    reads: int
    lookups: dict[str, float]  # the web's read-cache lookups in the run ("feed:miss": n)


def _pull_misses(
    cache: redis.Redis, groups: list[pull_reads.Group], repeats: int, seconds: float
) -> dict[str, list[_Timed]]:
    """Time first pages with windows dropped before each read, for the twins and the pull
    readers (``bench.pull_reads``): the feed window only, or it and the 5 authors' windows.

    Every key the groups' pages are made of is dropped first and refilled by one checked
    read of each page, so what is not dropped before a read is freshly cached (TTLs from
    now). Each run must show the lookups its drops imply in the web's counters: per read
    one feed-window miss, one pull-sources hit (a push reader's empty list is cached too),
    5 author-window lookups, all missing if dropped (else at most 1% missing), no object
    miss.
    """
    cache.delete(*(k for g in groups for k in g.cached()))
    for g in groups:
        for kind in TWINS:
            pull_reads.check_page(WEB_PORT, getattr(g, kind).token, g)
    runs: dict[str, list[_Timed]] = {}
    for i in range(repeats):
        for case, authors_too in (("window", False), ("all_windows", True)):
            for kind in _twins(i):
                conns = []
                for g in groups:
                    reader = getattr(g, kind)
                    drop = [cache_keys.feed(reader.id), *(g.windows() if authors_too else ())]
                    conns.append((reader.token, drop, g.first_page))
                run = _timed_reads(cache, conns, seconds)
                n, a = run.reads, pull_reads.AUTHORS * run.reads if kind == "pull" else 0
                want = {"feed:hit": 0, "feed:miss": n, "pull:hit": n, "pull:miss": 0}
                want |= {"author:lookups": a, "author:miss": a if authors_too else 0}
                want |= {"object:miss": 0}
                got = {k: run.lookups.get(k, 0.0) for k in want}
                got["author:lookups"] = got["author:miss"] + run.lookups.get("author:hit", 0.0)
                # Seen once at full size (not at --quick): each author window missed once in
                # the first window run, ~9 s after the warm-up filled it; tolerated up to 1%
                # of the lookups (and kept in the details), under investigation.
                stray = 0 if authors_too else got["author:miss"]
                if stray <= 0.01 * a:
                    got["author:miss"] -= stray
                if not n or got != want:
                    raise RuntimeError(f"{kind} {case}: cache lookups {got}, expected {want}")
                runs.setdefault(f"{kind}_{case}", []).append(run)
    return runs


def _timed_reads(
    cache: redis.Redis, conns: list[tuple[str, list[str], tuple[int, ...]]], seconds: float
) -> _Timed:
    """One connection per (token, keys, page): drop the keys, time a first page, check it
    is that page; over and over for ``seconds`` (closed loop, like wrk at len(conns))."""
    ms: list[float] = []
    wrong: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(token: str, drop: list[str], page: tuple[int, ...]) -> None:
        http = Http(WEB_PORT)
        while time.monotonic() < deadline:
            try:
                cache.delete(*drop)
                t0 = time.perf_counter()
                reply = http.call("GET", pull_reads.FEED_PATH, token)
                took = (time.perf_counter() - t0) * 1000
                ok = reply.status == 200 and pull_reads.page_ids(reply.body) == list(page)
                problem = "" if ok else f"status {reply.status}, {str(reply.body)[:200]}"
            except Exception as exc:  # counted below: the run fails
                took, problem = 0.0, repr(exc)
            with lock:
                if problem:
                    wrong.append(problem)
                else:
                    ms.append(took)

    before = _cache_counts()
    threads = [threading.Thread(target=loop, args=c, daemon=True) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    after = _cache_counts()
    if wrong:
        raise RuntimeError(f"{len(wrong)} reads were not the expected page: {wrong[0]}")
    lookups = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    return _Timed(percentile(ms, 50), percentile(ms, 99), len(ms), lookups)


def _pull_figures(runs: dict[str, list], conns: int) -> list[Figure]:
    """Issue 16's read figures for a reader of 5 pull authors, each beside its push twin."""

    def med(name: str, attr: str) -> float | None:
        return median([getattr(r, attr) for r in runs[name]])

    twin = "push reader of the same items"
    figures = [
        Figure(
            "reads.pull.hit.rps",
            f"feed cache-hit req/s, reader of 5 pull authors ({conns} connections)",
            med("pull_hot", "rps"),
            "req/s",
            med("push_hot", "rps"),
            f"{twin}, req/s",
            "≥ 0.8x push reader",
        ),
        Figure(
            "reads.pull.hit_redis_only.rps",
            "feed cache-hit req/s, reader of 5 pull authors, near cache off",
            med("pull_hot_redis_only", "rps"),
            "req/s",
            med("push_hot_redis_only", "rps"),
            f"{twin}, near cache off",
        ),
        Figure(
            "reads.pull.window_miss.p50_3conn",
            "feed window-miss p50, reader of 5 pull authors (3 connections)",
            med("pull_window", "p50_ms"),
            "ms",
            med("push_window", "p50_ms"),
            f"{twin}, window missing",
            "≤ 2x push reader",
        ),
        Figure(
            "reads.pull.window_miss.p99_3conn",
            "feed window-miss p99, reader of 5 pull authors (3 connections)",
            med("pull_window", "p99_ms"),
            "ms",
            med("push_window", "p99_ms"),
            f"{twin}, window missing",
        ),
        Figure(
            "reads.pull.all_windows_miss.p50_3conn",
            "feed miss p50, reader's and its 5 pull authors' windows all missing (3 connections)",
            med("pull_all_windows", "p50_ms"),
            "ms",
            med("push_all_windows", "p50_ms"),
            f"{twin}, window missing",
        ),
    ]
    hit, miss = figures[0], figures[2]
    hit.met = hit.ratio is not None and hit.ratio >= 0.8
    miss.met = miss.ratio is not None and miss.ratio <= 2.0
    return figures


def _pull_skipped() -> list[Figure]:
    why = "FEEDLINE_PULL_THRESHOLD is 0 (pull off): no feed merges pull authors"
    return [
        skipped(
            "reads.pull.hit.rps",
            "feed cache-hit req/s, reader of 5 pull authors",
            "req/s",
            why,
            "≥ 0.8x push reader",
        ),
        skipped(
            "reads.pull.window_miss.p50_3conn",
            "feed window-miss p50, reader of 5 pull authors",
            "ms",
            why,
            "≤ 2x push reader",
        ),
    ]


@contextlib.contextmanager
def _redis_only_web(ctx: Ctx):
    """A second web on the same config with its near cache off: the hit as it was before."""
    off = {"FEEDLINE_NEAR_CACHE_SIZE": "0", "FEEDLINE_NEAR_CACHE_PAGES": "0"}
    proc = ctx.env.gunicorn(
        "web-redis-only", "feedline.http.app:get_app()", REDIS_ONLY_PORT, **off
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


@contextlib.contextmanager
def _posting(tokens: list[str], rate: float, seconds: float, ctx: Ctx):
    """Post shards as random users through the API meanwhile (open loop, in a thread).

    Each post makes the pipeline invalidate its author's cached feed, so the Zipf figure
    is a steady state with writes, not a cache nobody changes. Yields a callable that
    returns how many posts succeeded (once the block has ended).
    """
    results: list = []

    def post(http: Http, i: int) -> tuple[bool, None]:
        token = tokens[ctx.rng.randrange(len(tokens))]
        return http.call("POST", "/v1/shards", token, {"body": f"zipf {i}"}).status == 201, None

    thread = threading.Thread(
        target=lambda: results.extend(open_loop(WEB_PORT, post, rate, seconds, threads=4)),
        daemon=True,
    )
    thread.start()
    try:
        yield lambda: sum(r.ok for r in results)
    finally:
        thread.join(seconds + 60)


def _lookups() -> dict[str, float]:
    """The web's feed-window cache lookups so far: {"hit": n, "miss": n}."""
    counts = _cache_counts()
    return {"hit": counts.get("feed:hit", 0.0), "miss": counts.get("feed:miss", 0.0)}


def _cache_counts() -> dict[str, float]:
    """The web's read-cache lookups so far by kind and result: {"feed:hit": n, ...}."""
    url = f"http://127.0.0.1:{ops_port(WEB_PORT)}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("feedline_read_cache_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            key = f"{labels.get('kind')}:{labels.get('result')}"
            out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _hit_ratio(before: dict[str, float], after: dict[str, float]) -> float | None:
    hits, misses = after["hit"] - before["hit"], after["miss"] - before["miss"]
    return hits / (hits + misses) if hits + misses else None


def _seed_feeds(settings, user_ids: list[int], ctx: Ctx) -> None:
    """Write a pool of shards and ITEMS feed rows per user directly into the bench keyspace."""
    cluster, session = cassandra.connect(settings.cassandra)
    try:
        shard = session.prepare(st.get(st.UPSERT_SHARD).cql)
        feed = session.prepare(st.get(st.INSERT_FEED_ITEM).cql)
        now = datetime.now(UTC).replace(microsecond=0)
        pool = []
        for i in range(max(1000, 2 * len(user_ids))):
            sid, author = SHARD_BASE + i, ctx.rng.choice(user_ids)
            created = now - timedelta(seconds=i)
            pool.append((sid, author, created))
        work = [(shard, (s, a, f"read bench {s}", 0, 0, c, 1)) for s, a, c in pool]
        for u in user_ids:
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for s, a, c in ctx.rng.sample(pool, ITEMS):
                batch.add(feed, (u, c, s, a, 1))
            work.append((batch, None))
        for ok, res in execute_concurrent(session, work, concurrency=64, results_generator=True):
            if not ok:
                raise res
    finally:
        cluster.shutdown()
    time.sleep(0.1)
