"""Pull fan-out: a 1,000,000-follower author's post, 2xx -> in sampled followers' feeds.

Seeding (direct, as bench/fanout.py does: a million follows through the API and CDC would
take far longer than the measurement and measure something else). One author gets
``pull_followers`` followers in followers_by_user: ``pull_readers`` real users (tokens)
and synthetic ids for the rest; the state a finished push -> pull sweep leaves is written
with them (``seed.big_author``: a settled 'pull' decision, each reader's follow edge and
pull-list entry), and PostgreSQL's follower_count is set to match, so the users event
this causes plans a mode check that keeps the author pull. The baseline is two ordinary
push authors, each followed by half the readers (1,000 followers at full size, seeded in
the read model only: their PostgreSQL follower counts stay 0, so they stay push): the
same readers, each waiting for exactly one post, read by
the same poller at the same load, so both figures carry the same polling resolution.

Measurement. The clock starts at the API's 201 for the post (the transaction has
committed). A reader has seen it at the first read of their first feed page
(``GET /v1/feed`` on the bench web, which merges pull authors' shards at read time) that
lists the shard. ``POLLERS`` HTTP clients poll concurrently, always taking next the
reader whose last unsuccessful read is oldest (a round robin, in random order, over the
readers not yet served), so each reader's visibility lies between the sending of its
last miss and the answer to its first hit. The figure is the first hit (an upper bound);
the last miss (the lower bound) is in the details beside it with the poll rate. Even
once a post is visible everywhere, the readers still unread wait for their turn: a round
over N readers takes N / (reads per second), and this box serves ~1,000 merged feed
pages a second, so 2,000 readers polled after one post would put ~2 s of poller into
the figure (tried: p99 2.0 s, last miss p99 0.1 s). So the sample is read in cohorts of
``COHORT`` readers, one post each (the pull author posts once per cohort, and the push
authors once each per cohort), and the percentiles pool all cohorts' readers: the
resolution is ~0.3 s (``round_s`` in the details; cohorts of 500 gave 0.6-1.1 s), in
both the figure and its baseline. Each poll is bounded by ``TIMEOUT_S`` from the 201
(a reader not served by then fails the benchmark).

Rows. ``feedline_rows_written_total{table}`` on the bench pipeline's /metrics, read just
before the post and after the pipeline is done with it (its events done and the
pipeline caught up, a few seconds), so the delta also holds whatever other CDC traffic
the shared topics carried meanwhile (other users of the machine): the push baseline's
windows have the same exposure; per post, median over the cohorts. Beside it, the reads
of followers_by_user in the same window (Cassandra's
``system_views.coordinator_read_latency`` count): a settled pull author's post reads one
page of followers (with its mode), where paging through 1,000,000 followers would read
2,000 pages.
"""

from __future__ import annotations

import heapq
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench import seed
from bench.client import Http
from bench.context import Ctx
from bench.env import (
    KEYSPACE,
    PIPELINE_PORT,
    WEB_PORT,
    events_done,
    pipeline_metrics,
    wait_caught_up,
)
from bench.figures import Figure
from bench.stats import median, percentile
from feedline import cassandra
from feedline.fanout import CHUNK

FOLLOWER_BASE = 600_000_000_000  # synthetic followers (not users): ids no user has
POLLERS = 12  # concurrent feed readers: enough to keep 3 sync web workers busy
COHORT = 250  # readers polled per post: a round over them takes ~0.3 s here
TIMEOUT_S = 60.0
ROWS = "feedline_rows_written_total{"
READS_CQL = (
    "SELECT table_name, count FROM system_views.coordinator_read_latency WHERE keyspace_name = %s"
)


@dataclass(frozen=True)
class Target:
    """A reader waiting for one shard, and the 201 that started its clock."""

    token: str
    shard_id: int
    posted: float


@dataclass
class Seen:
    """One reader's visibility interval (seconds after its post's 201) and reads made."""

    last_miss: float = 0.0
    first_hit: float | None = None
    reads: int = 0


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    env, z = ctx.env, ctx.sizes
    users = seed.create_users(env.settings, f"b{env.run_id}p", 3 + z.pull_readers)
    author, pushers, readers = users[0], users[1:3], users[3:]
    half = len(readers) // 2
    groups = [readers[:half], readers[half:]]
    ids = [r.id for r in readers]
    followers = ids + [FOLLOWER_BASE + j for j in range(z.pull_followers - len(ids))]
    followed_at = datetime.now(UTC) - timedelta(minutes=1)
    cluster, session = cassandra.connect(env.settings.cassandra)
    try:
        started = time.monotonic()
        seed.big_author(session, author.id, followers, ids, pull=True, followed_at=followed_at)
        seeded_s = time.monotonic() - started
        for pusher, group in zip(pushers, groups, strict=True):
            gids = [r.id for r in group]
            seed.big_author(session, pusher.id, gids, gids, pull=False, followed_at=followed_at)
        seed.set_follower_count(env.settings, author.id, len(followers))
        # The push authors' PostgreSQL counts stay 0 (as bench/fanout.py's authors): set to
        # 1,000 they would cross FEEDLINE_PULL_THRESHOLD (500) and be swept to pull.
        wait_caught_up(PIPELINE_PORT)
        _warm(readers)
        # Interleaved cohorts: each holds readers of both push authors, from the whole
        # id range (a push fan-out writes followers in id order).
        n = -(-len(readers) // COHORT)
        cohorts = [readers[k::n] for k in range(n)]
        side = {r.id: k for k, g in enumerate(groups) for r in g}  # which push author
        runs = []
        for _ in range(z.repeats):
            push, pull = [], []
            for cohort in cohorts:
                mine = [[r for r in cohort if side[r.id] == k] for k in range(len(groups))]
                push.append(_phase(ctx, session, list(zip(pushers, mine, strict=True))))
                pull.append(_phase(ctx, session, [(author, cohort)]))
            runs.append({"push": _summary(push), "pull": _summary(pull)})
    finally:
        cluster.shutdown()
    details = {
        "followers": len(followers),
        "readers": len(readers),
        "cohorts": len(cohorts),
        "push_followers": [len(g) for g in groups],
        "seed_followers_s": round(seeded_s, 1),
        "pollers": POLLERS,
        "runs": runs,
    }
    return _figures(runs, len(followers), len(readers), len(groups[0])), details


def _figures(runs: list[dict], followers: int, readers: int, per_push: int) -> list[Figure]:
    def med(mode: str, key: str) -> float | None:
        return median([r[mode][key] for r in runs])

    pull_reads = med("pull", "follower_reads")
    figures = [
        Figure(
            "pull_fanout.visible_p99",
            f"pull author ({followers:,} followers) post -> in {readers:,} sampled"
            " followers' feeds (GET /v1/feed), p99 of first hit",
            med("pull", "hit_p99_s"),
            "s",
            med("push", "hit_p99_s"),
            f"two push authors' posts ({per_push:,} followers each), same readers",
            goal="≤ 1 s",
            note=f"last miss p99 {_fmt(med('pull', 'miss_p99_s'))} s",
        ),
        Figure(
            "pull_fanout.visible_p50",
            f"pull author post -> in {readers:,} followers' feeds, p50 of first hit",
            med("pull", "hit_p50_s"),
            "s",
            med("push", "hit_p50_s"),
            "push authors' posts, same readers",
        ),
        Figure(
            "pull_fanout.rows",
            "rows the pipeline writes for the pull author's post (all tables)",
            med("pull", "rows_total"),
            "rows",
            med("push", "rows_total"),
            f"one push post to {per_push:,} followers",
            goal="O(1): ≤ 100",
        ),
        Figure(
            "pull_fanout.follower_reads",
            "followers_by_user reads while the pipeline handles the pull post",
            pull_reads,
            "reads",
            med("push", "follower_reads"),
            f"one push post to {per_push:,} followers",
            goal=f"no paging: ≤ 10 (all pages: {followers // CHUNK:,})",
        ),
    ]
    p99, rows = figures[0].value, figures[2].value
    figures[0].met = p99 is not None and p99 <= 1.0
    figures[2].met = rows is not None and rows <= 100
    figures[3].met = pull_reads is not None and pull_reads <= 10
    return figures


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _warm(readers: list[seed.User]) -> None:
    """Read every reader's feed once (an active reader's windows are cached); all 200."""
    targets = [Target(r.token, -1, time.monotonic()) for r in readers]
    _poll(targets)


def _phase(ctx: Ctx, session, posts: list[tuple[seed.User, list[seed.User]]]) -> dict:
    """Post once per (author, readers), poll the readers (in random order) until each saw
    their post; then wait for the pipeline to be done and count what it wrote and read."""
    done0, rows0, reads0 = events_done(PIPELINE_PORT), _rows(), _follower_reads(session)
    targets = []
    for author, readers in posts:
        reply = Http(WEB_PORT).call("POST", "/v1/shards", author.token, {"body": "pull bench"})
        posted = time.monotonic()
        if reply.status != 201:
            raise RuntimeError(f"POST /v1/shards: {reply.status} {reply.body}")
        targets += [Target(r.token, reply.body["id"], posted) for r in readers]
    ctx.rng.shuffle(targets)
    started = time.monotonic()
    seen = _poll(targets)
    polled_s = time.monotonic() - started
    # Each post is two events (the shard, its author's shard_count); then let it settle.
    deadline = time.monotonic() + TIMEOUT_S
    while events_done(PIPELINE_PORT) < done0 + 2 * len(posts) and time.monotonic() < deadline:
        time.sleep(0.05)
    wait_caught_up(PIPELINE_PORT, timeout=TIMEOUT_S)
    rows = {t: n - rows0.get(t, 0) for t, n in _rows().items() if n - rows0.get(t, 0)}
    reads = sum(s.reads for s in seen)
    return {
        "seen": seen,
        "round_s": len(targets) * polled_s / reads,
        "reads_per_s": reads / polled_s,
        "rows_by_table": {t: n / len(posts) for t, n in rows.items()},
        "follower_reads": (_follower_reads(session) - reads0) / len(posts),
        "metrics_window_s": time.monotonic() - started,
    }


def _summary(phases: list[dict]) -> dict:
    """Pool one repeat's cohorts: visibility percentiles over all readers, and per post
    the median of the rows written and followers_by_user reads."""
    hits = [s.first_hit for p in phases for s in p["seen"]]
    misses = [s.last_miss for p in phases for s in p["seen"]]
    cohorts = {
        f"{k}_by_cohort": [round(p[k], 3) for p in phases]
        for k in ("round_s", "reads_per_s", "follower_reads", "metrics_window_s")
    }
    return {
        "hit_p50_s": percentile(hits, 50),
        "hit_p99_s": percentile(hits, 99),
        "hit_max_s": max(hits),
        "miss_p50_s": percentile(misses, 50),
        "miss_p99_s": percentile(misses, 99),
        "miss_max_s": max(misses),
        "rows_total": median([sum(p["rows_by_table"].values()) for p in phases]),
        "follower_reads": median([p["follower_reads"] for p in phases]),
        "rows_by_table": [p["rows_by_table"] for p in phases],
        **cohorts,
    }


def _poll(targets: list[Target]) -> list[Seen]:
    """Read each target's first feed page until it lists the target's shard.

    ``POLLERS`` threads share one heap keyed by the time of each target's last miss, so
    the reader waiting longest since their last look is read next. A target whose shard
    id is -1 is served by any 200 (warming up). Raises after ``TIMEOUT_S``.
    """
    seen = [Seen() for _ in targets]
    heap = [(0.0, i) for i in range(len(targets))]  # first, in the order given
    heapq.heapify(heap)
    lock = threading.Lock()
    errors: list[str] = []
    deadline = time.monotonic() + TIMEOUT_S

    def worker() -> None:
        http = Http(WEB_PORT)
        while time.monotonic() < deadline and not errors:
            with lock:
                if not heap:
                    return
                _, i = heapq.heappop(heap)
            t, s = targets[i], seen[i]
            sent = time.monotonic()
            try:
                reply = http.call("GET", "/v1/feed", t.token)
            except OSError as exc:
                errors.append(f"GET /v1/feed: {exc!r}")
                return
            got = time.monotonic()
            s.reads += 1
            if reply.status != 200:
                errors.append(f"GET /v1/feed: {reply.status} {reply.body}")
                return
            if t.shard_id == -1 or any(it["id"] == t.shard_id for it in reply.body["items"]):
                s.first_hit = got - t.posted
                continue
            s.last_miss = sent - t.posted
            with lock:
                heapq.heappush(heap, (sent, i))

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(POLLERS)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(max(0.0, deadline - time.monotonic()) + 5)
    if errors:
        raise RuntimeError(errors[0])
    late = sum(s.first_hit is None for s in seen)
    if late:
        raise RuntimeError(f"{late} of {len(targets)} readers did not see it in {TIMEOUT_S:.0f}s")
    return seen


def _rows() -> dict[str, float]:
    """Rows written so far by the bench pipeline, by table."""
    return {
        k[len(ROWS) :].split('"')[1]: v
        for k, v in pipeline_metrics(PIPELINE_PORT).items()
        if k.startswith(ROWS)
    }


def _follower_reads(session) -> int:
    """Reads of followers_by_user in the bench keyspace so far (the coordinator's count)."""
    rows = session.execute(READS_CQL, (KEYSPACE,))
    return sum(r.count for r in rows if r.table_name == "followers_by_user")
