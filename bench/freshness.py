"""End-to-end freshness: API 2xx -> visible in the read model, at steady write rates.

Users (~10 follows each, seeded in PostgreSQL and applied by the bench pipeline) send a
mixed open-loop load through the bench API: 30% shards, 30% likes, 20% comments, 10%
follows, 10% unfollows (of edges this run created, so seeded edges stay stable). A sample
of writes (about 40/s whatever the rate, so probing does not load Cassandra more than the
writes) is watched until visible: a shard in a stable follower's feed_by_user, a like in
likes_by_shard, a comment in comments_by_shard, a follow in following_by_user and an
unfollow gone from it. The baseline is capture alone: the same writes' 2xx -> change
event on Kafka (Debezium), so the rest is the pipeline. A rate passes when the load was
actually sent at >= 90% of the target, nothing timed out and p99 < 1 s; the goal rates
(100, 200 and 300/s) run ``repeats`` times and the run with the median p99 is reported, every
run's p99 beside it in the JSON, with the stall probe's CPU-time tail measured alongside each
run (bench/stall_probe.py: how much the host stretched CPU time meanwhile).

Then the same load at 100 writes/s (issue 16's figure) runs in alternating phases, quiet
and loaded, ``repeats`` times each (the machine is noisy: medians are reported). Loaded
adds a pull author with ``mixed_pull_followers`` followers and a push author just under
the threshold (``pull_threshold`` - 1), each posting through the API every
``mixed_post_every_s`` seconds. Their audiences are seeded directly in the read model
(``seed.big_author``: synthetic follower ids, a settled pull decision, one real reader of
the pull author) and PostgreSQL's follower counts set to agree, so the mode checks those
count changes plan keep each author's mode. The figure is the ordinary writes' p99,
loaded against quiet (goal <= 1.5x); beside it the stall probe's CPU-time tail in each
phase (bench/stall_probe.py). The details hold each big post's visibility (push: 201 ->
its last followers' feed rows, then every follower checked after the phase; pull: 201 ->
in the reader's ``GET /v1/feed``) and the rows the pipeline wrote per phase by table.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from bench import seed, stall_probe
from bench.client import Http, achieved_rate, open_loop
from bench.context import Ctx
from bench.env import PIPELINE_PORT, WEB_PORT, pipeline_metrics, wait_caught_up
from bench.figures import Figure, skipped
from bench.probe import TIMEOUT_S, KafkaTail, Probe, Prober, in_every_feed
from bench.stats import median, percentile
from feedline import cassandra
from feedline import statements as st
from feedline.strategies.decode import KEYS, parse_timestamptz

MIX = (("shard", 30), ("like", 30), ("comment", 20), ("follow", 10), ("unfollow", 10))
SAMPLES_PER_S = 40
# Run ``repeats`` times each; the run with the median p99 is reported. 200/s: the first
# wave's goal; 300/s: issue 17's (p99 <= 1 s, median of three, the stall probe beside it).
GOAL_RATES = (100, 200, 300)
UNFOLLOW_AFTER_S = 5.0
MIXED_RATE = 100  # writes/s of the quiet vs loaded phases (issue 16)
MIXED_GOAL = 1.5  # loaded p99 at most this many times the quiet p99
BIG_FOLLOWER_BASE = 700_000_000_000  # synthetic follower ids of the big authors
LAST_FOLLOWERS = 10  # a push post is visible when these (paged last) have its row
VISIBLE_POLL_S = 0.1
VISIBLE_TIMEOUT_S = 30.0
QUERIES = {
    "shard": "SELECT shard_id FROM feed_by_user WHERE user_id = ? AND created_at = ?"
    " AND shard_id = ?",
    "like": "SELECT user_id FROM likes_by_shard WHERE shard_id = ? AND user_id = ?",
    "comment": "SELECT comment_id FROM comments_by_shard WHERE shard_id = ? AND created_at = ?"
    " AND comment_id = ?",
    "follow": "SELECT followee_id FROM following_by_user WHERE user_id = ? AND followee_id = ?",
}


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    env, z = ctx.env, ctx.sizes
    users = seed.create_users(env.settings, f"b{env.run_id}r", z.fresh_users)
    edges = seed.follow_graph(env.settings, users, z.fresh_followers, ctx.rng)
    shards = seed.create_shards(env.settings, [u.id for u in users], 2 * len(users), ctx.rng)
    cluster, session = cassandra.connect(env.settings.cassandra)
    statements = {k: session.prepare(q) for k, q in QUERIES.items()}
    kafka = env.settings.kafka
    tail = KafkaTail(
        kafka.bootstrap, {t: kafka.topic(t) for t in KEYS}, f"feedline-benchtail-{env.run_id}"
    )
    prober = Prober(session)
    load = Workload(users, edges, shards, statements, prober)
    steps: dict[int, dict] = {}
    try:
        wait_caught_up(PIPELINE_PORT)
        for rate in z.fresh_rates:
            if rate > 500 and steps and not list(steps.values())[-1]["passed"]:
                break
            load.sample_every = max(1, rate // SAMPLES_PER_S)
            runs = []
            for _ in range(z.repeats if rate in GOAL_RATES else 1):
                wait_caught_up(PIPELINE_PORT)
                with (
                    ctx.sampler.phase("freshness load"),
                    stall_probe.alongside(z.fresh_seconds) as unit,
                ):
                    sent = open_loop(WEB_PORT, load.op, rate, z.fresh_seconds, threads=32)
                    prober.drain()
                runs.append({**_summary(rate, sent, prober.take(), tail), "cpu_unit": unit})
            steps[rate] = _median_run(runs)
        mixed = _mixed(ctx, session, statements["shard"], load, prober, tail)
    finally:
        prober.stop()
        tail.stop()
        cluster.shutdown()
        env.drop_groups(f"feedline-benchtail-{env.run_id}")
    figures = _figures(z.fresh_rates, steps) + _mixed_figures(mixed)
    return figures, {"steps": steps, "mixed": mixed}


class Workload:
    """Pick each request of the mixed load and register a probe for sampled ones."""

    def __init__(self, users, edges, shards, statements, prober: Prober | None, mix=MIX):
        """``prober`` None: nothing is probed (the CPU benchmark's load, bench/cpu.py)."""
        self.mix = mix
        self.tokens = {u.id: u.token for u in users}
        self.ids = list(self.tokens)
        self.followers_of: dict[int, list[int]] = defaultdict(list)
        for f, e in edges:
            self.followers_of[e].append(f)
        self.edges = set(edges)
        # Edges this load followed, with when: unfollowed only after UNFOLLOW_AFTER_S, so an
        # unfollow does not overtake its own follow (and the follow's probe sees its row).
        self.churn: list[tuple[int, int, float]] = []
        self.shards = list(shards)
        self.liked: set[tuple[int, int]] = set()
        # Pairs ever followed by this load: never followed again, so a follow cannot race
        # an unfollow of the same pair still in flight.
        self.touched: set[tuple[int, int]] = set(edges)
        self.statements = statements
        self.prober = prober
        self.sample_every = 1
        self.lock = threading.Lock()

    def op(self, http: Http, i: int) -> tuple[bool, str]:
        rng = random.Random(i)
        kind = rng.choices([k for k, _ in self.mix], [w for _, w in self.mix])[0]
        with self.lock:
            if kind == "unfollow" and not self._ripe():
                kind = "follow"
            args = getattr(self, f"_pick_{kind}")(rng)
        ok, probe = getattr(self, f"_do_{kind}")(http, *args)
        if ok and probe is not None and self.prober and i % self.sample_every == 0:
            self.prober.add(probe)
        return ok, kind

    # -- choose (under the lock) -----------------------------------------------------

    def _pick_shard(self, rng):
        return (rng.choice(self.ids),)

    def _pick_like(self, rng):
        for _ in range(10):
            pair = (rng.choice(self.shards), rng.choice(self.ids))
            if pair not in self.liked:
                break
        self.liked.add(pair)
        return pair

    def _pick_comment(self, rng):
        return (rng.choice(self.shards), rng.choice(self.ids))

    def _pick_follow(self, rng):
        for _ in range(20):
            u, v = rng.sample(self.ids, 2)
            if (u, v) not in self.touched:
                break
        self.edges.add((u, v))
        self.touched.add((u, v))
        return (u, v)

    def _ripe(self) -> int:
        """How many churn edges (oldest first) are old enough to unfollow."""
        cutoff = time.monotonic() - UNFOLLOW_AFTER_S
        return sum(1 for *_, t in self.churn if t < cutoff)

    def _pick_unfollow(self, rng):
        u, v, _ = self.churn.pop(rng.randrange(self._ripe()))
        self.edges.discard((u, v))
        return (u, v)

    # -- send and describe what becomes visible ----------------------------------------

    def _probe(self, kind, params, key, want=True, query=None):
        if self.prober is None:
            return None
        return Probe(kind, self.statements[query or kind], params, want, key, time.monotonic())

    def _do_shard(self, http, u):
        r = http.call("POST", "/v1/shards", self.tokens[u], {"body": "fresh"})
        if r.status != 201:
            return False, None
        sid, created = r.body["id"], parse_timestamptz(r.body["created_at"])
        probe = self._probe("shard", (0, created, sid), ("shards", (sid,)))
        with self.lock:
            self.shards.append(sid)
            reader = random.choice(self.followers_of.get(u) or [u])
        if probe is not None:
            probe.params = (reader, created, sid)
        return True, probe

    def _do_like(self, http, s, u):
        r = http.call("PUT", f"/v1/shards/{s}/like", self.tokens[u])
        return r.status == 204, self._probe("like", (s, u), ("likes", (s, u)))

    def _do_comment(self, http, s, u):
        r = http.call("POST", f"/v1/shards/{s}/comments", self.tokens[u], {"body": "fresh"})
        if r.status != 201:
            return False, None
        cid, created = r.body["id"], parse_timestamptz(r.body["created_at"])
        return True, self._probe("comment", (s, created, cid), ("comments", (cid,)))

    def _do_follow(self, http, u, v):
        r = http.call("PUT", f"/v1/following/{v}", self.tokens[u])
        if r.status == 204:
            with self.lock:
                self.churn.append((u, v, time.monotonic()))
        return r.status == 204, self._probe("follow", (u, v), ("followers", (u, v)))

    def _do_unfollow(self, http, u, v):
        r = http.call("DELETE", f"/v1/following/{v}", self.tokens[u])
        probe = self._probe("unfollow", (u, v), ("followers", (u, v)), False, "follow")
        return r.status == 204, probe


class BigAuthors:
    """A pull author and a push author just under the threshold, posting every ``every`` s.

    Seeded directly (see the module docstring); each posts through the API like any user.
    A watcher thread per post notes when it became visible, so a slow one never delays
    the next post.
    """

    def __init__(self, env, session, check, pull_followers: int, push_followers: int):
        pull, push, reader = seed.create_users(env.settings, f"b{env.run_id}m", 3)
        self.session, self.check, self.reader = session, check, reader
        self.tokens = {"pull": pull.token, "push": push.token}
        self.ids = {"pull": pull.id, "push": push.id}
        push_base = BIG_FOLLOWER_BASE + pull_followers
        self.followers = {
            "pull": [*range(BIG_FOLLOWER_BASE, BIG_FOLLOWER_BASE + pull_followers - 1), reader.id],
            "push": list(range(push_base, push_base + push_followers)),
        }
        now = datetime.now(UTC)
        seed.big_author(
            session, pull.id, self.followers["pull"], [reader.id], pull=True, followed_at=now
        )
        seed.big_author(session, push.id, self.followers["push"], [], pull=False, followed_at=now)
        for author, mode in ((pull, "pull"), (push, "push")):
            seed.set_follower_count(env.settings, author.id, len(self.followers[mode]))
        self.posts: list[dict] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self, seconds: float, every: float) -> None:
        """Post on schedule for ``seconds``: pull at 0.1 x ``every``, push half a period on."""
        start = time.monotonic()
        plan = sorted(
            (offset, mode)
            for mode, first in (("pull", 0.1), ("push", 0.6))
            for k in range(int(seconds / every) + 1)
            if (offset := (first + k) * every) < seconds
        )
        self.threads = [threading.Thread(target=self._post_all, args=(start, plan), daemon=True)]
        self.threads[0].start()

    def finish(self) -> list[dict]:
        """Wait for every post's watcher; check every push follower's row; return the posts."""
        while self.threads:
            self.threads.pop(0).join(VISIBLE_TIMEOUT_S + 10)
        posts, self.posts = self.posts, []
        for p in posts:
            if p["mode"] == "push" and p["ok"]:
                p["every_follower"] = in_every_feed(
                    self.session, self.check, self.followers["push"], p.pop("created"), p["id"]
                )
            p.pop("created", None)
        return posts

    def _post_all(self, start: float, plan: list[tuple[float, str]]) -> None:
        http = Http(WEB_PORT)
        for offset, mode in plan:
            time.sleep(max(0.0, start + offset - time.monotonic()))
            post: dict[str, Any] = {"mode": mode, "at_s": round(time.monotonic() - start, 2)}
            try:
                r = http.call("POST", "/v1/shards", self.tokens[mode], {"body": f"big {mode}"})
                post["ok"] = r.status == 201
            except OSError as exc:
                post["ok"], post["error"] = False, repr(exc)
                http = Http(WEB_PORT)
            sent = post["sent"] = time.monotonic()
            if post["ok"]:
                post["id"], post["created"] = r.body["id"], parse_timestamptz(r.body["created_at"])
                watch = threading.Thread(target=self._watch, args=(post, sent), daemon=True)
                watch.start()
                self.threads.append(watch)
            with self.lock:
                self.posts.append(post)

    def _watch(self, post: dict, sent: float) -> None:
        http = Http(WEB_PORT)
        last = self.followers["push"][-LAST_FOLLOWERS:]
        post["visible_s"] = None
        while time.monotonic() - sent < VISIBLE_TIMEOUT_S:
            try:
                seen = self._seen(http, post, last)
            except OSError:  # "not yet": a dropped connection is opened again
                seen, http = False, Http(WEB_PORT)
            if seen:
                post["visible_s"] = round(time.monotonic() - sent, 3)
                return
            time.sleep(VISIBLE_POLL_S)

    def _seen(self, http: Http, post: dict, last: list[int]) -> bool:
        if post["mode"] == "push":
            return in_every_feed(self.session, self.check, last, post["created"], post["id"])
        page = http.call("GET", "/v1/feed?limit=20", self.reader.token).body
        items = page.get("items", []) if isinstance(page, dict) else []
        return any(item.get("id") == post["id"] for item in items)

    def modes(self) -> dict[str, str | None]:
        """Each author's decision in author_mode: its target once settled, else "unsettled"
        (None: no row, which is push)."""
        out: dict[str, str | None] = {}
        select = self.session.prepare(st.get(st.SELECT_AUTHOR_MODE).cql)
        for mode, author in self.ids.items():
            row = self.session.execute(select, (author,)).one()
            settled = row is None or row.settled_lsn == row.target_lsn
            out[mode] = (row and row.target) if settled else "unsettled"
        return out


def _mixed(ctx: Ctx, session, check, load: Workload, prober: Prober, tail: KafkaTail) -> dict:
    """Run the quiet and loaded phases at MIXED_RATE, alternating; return every run."""
    env, z = ctx.env, ctx.sizes
    threshold = env.settings.pipeline.pull_threshold
    if threshold <= 0:
        return {"skipped": "FEEDLINE_PULL_THRESHOLD=0 (pull off)"}
    if z.mixed_seconds <= 0:
        return {"skipped": "mixed_seconds=0 (rate sweep only)"}
    # The pull author must be past the threshold whatever QUICK's size says.
    pull_n, push_n = max(z.mixed_pull_followers, threshold + 1), threshold - 1
    big = BigAuthors(env, session, check, pull_n, push_n)
    wait_caught_up(PIPELINE_PORT)  # the users events of the counts: their mode checks
    modes = big.modes()
    if modes["pull"] != "pull" or modes["push"] not in (None, "push"):
        raise RuntimeError(f"big authors not in their seeded modes: {modes}")
    load.sample_every = max(1, MIXED_RATE // SAMPLES_PER_S)
    runs: dict[str, list[dict]] = {"quiet": [], "loaded": []}
    for _ in range(z.repeats):
        for phase in runs:
            wait_caught_up(PIPELINE_PORT)
            before = pipeline_metrics(PIPELINE_PORT)
            with (
                ctx.sampler.phase("freshness load"),
                stall_probe.alongside(z.mixed_seconds) as stall,
            ):
                if phase == "loaded":
                    big.start(z.mixed_seconds, z.mixed_post_every_s)
                sent = open_loop(WEB_PORT, load.op, MIXED_RATE, z.mixed_seconds, threads=32)
                prober.drain()
                posts = big.finish() if phase == "loaded" else []
            wait_caught_up(PIPELINE_PORT)
            probes = prober.take()
            run = _summary(MIXED_RATE, sent, probes, tail)
            run.update(
                during_push_fanout=_during_push_fanout(probes, posts),
                big_posts=posts,
                cpu_unit=stall,
                rows_written=_rows_written(before, pipeline_metrics(PIPELINE_PORT)),
            )
            runs[phase].append(run)
    return {
        "pull_followers": pull_n,
        "push_followers": push_n,
        "threshold": threshold,
        "post_every_s": z.mixed_post_every_s,
        "summary": _mixed_summary(runs),
        **runs,
    }


def _during_push_fanout(probes: list[Probe], posts: list[dict]) -> dict:
    """Split the ordinary writes' freshness: 2xx while a push post was on its way to its
    last followers (201 -> visible), or not; says whether that fan-out makes the tail."""
    spans = [
        (p["sent"], p["sent"] + (p.get("visible_s") or VISIBLE_TIMEOUT_S))
        for p in posts
        if p["mode"] == "push" and p["ok"]
    ]
    for p in posts:
        p.pop("sent", None)
    split: dict[bool, list[float]] = {True: [], False: []}
    for p in probes:
        fresh = TIMEOUT_S if p.timed_out else p.seen_at - p.ok_at
        split[any(a <= p.ok_at <= b for a, b in spans)].append(fresh)
    out: dict[str, float | int | None] = {}
    for name, during in (("during", True), ("outside", False)):
        out[f"{name}_n"] = len(split[during])
        out[f"{name}_p50"] = percentile(split[during], 50)
        out[f"{name}_p99"] = percentile(split[during], 99)
    return out


def _mixed_summary(runs: dict[str, list[dict]]) -> dict:
    """Medians the report quotes: each big author's visibility, the rows they added."""
    posts = [p for r in runs["loaded"] for p in r["big_posts"]]
    out: dict[str, Any] = {}
    for mode in ("pull", "push"):
        mine = [p for p in posts if p["mode"] == mode]
        out[f"{mode}_posts"] = len(mine)
        out[f"{mode}_visible_s_median"] = median([p.get("visible_s") for p in mine])
        out[f"{mode}_visible_s_max"] = max((p.get("visible_s") or 0.0 for p in mine), default=None)
    for when in ("during", "outside"):  # a push post's fan-out (medians of the loaded runs)
        for q in ("n", "p99"):
            out[f"ordinary_{q}_{when}_push_fanout"] = median(
                [r["during_push_fanout"][f"{when}_{q}"] for r in runs["loaded"]]
            )
    out["push_every_follower"] = all(p.get("every_follower") for p in posts if p["mode"] == "push")
    tables = {t for r in runs["quiet"] + runs["loaded"] for t in r["rows_written"]}
    out["rows_written_loaded_minus_quiet"] = {
        t: (median([r["rows_written"].get(t, 0.0) for r in runs["loaded"]]) or 0.0)
        - (median([r["rows_written"].get(t, 0.0) for r in runs["quiet"]]) or 0.0)
        for t in sorted(tables)
    }
    return out


def _rows_written(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Rows the pipeline wrote between two scrapes, by table (feedline_rows_written_total)."""
    prefix = "feedline_rows_written_total{"
    return {
        k.split('"')[1]: v - before.get(k, 0.0) for k, v in after.items() if k.startswith(prefix)
    }


def _median_run(runs: list[dict]) -> dict:
    """The run with the median p99 (the machine is noisy), with every run's p99 beside it."""
    ranked = sorted(runs, key=lambda r: (r["p99"] is None, r["p99"] or 0.0))
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["p99_of_each_run"] = [r["p99"] for r in runs]
    chosen["passed_runs"] = sum(r["passed"] for r in runs)
    return chosen


def _summary(rate: int, sent: list, probes: list[Probe], tail: KafkaTail) -> dict:
    fresh = [TIMEOUT_S if p.timed_out else p.seen_at - p.ok_at for p in probes]
    capture = [c for p in probes if (c := tail.capture(p.key, p.ok_at)) is not None]
    by_kind = defaultdict(list)
    for p, f in zip(probes, fresh, strict=True):
        by_kind[p.kind].append(f)
    achieved = achieved_rate(sent) or 0.0
    p99 = percentile(fresh, 99)
    out = {
        "target": rate,
        "achieved": achieved,
        "errors": sum(not r.ok for r in sent),
        "sent": len(sent),
        "probes": len(probes),
        "timeouts": sum(p.timed_out for p in probes),
        "p50": percentile(fresh, 50),
        "p95": percentile(fresh, 95),
        "p99": p99,
        "capture_p50": percentile(capture, 50),
        "capture_p95": percentile(capture, 95),
        "capture_p99": percentile(capture, 99),
        "p99_by_kind": {k: percentile(v, 99) for k, v in by_kind.items()},
    }
    out["passed"] = (
        achieved >= 0.9 * rate and out["timeouts"] == 0 and p99 is not None and p99 < 1.0
    )
    return out


def _figures(rates: tuple[int, ...], steps: dict[int, dict]) -> list[Figure]:
    shown = [r for r in rates if r in (100, 200, 300, 500)] or list(rates)
    figures = []
    for rate in shown:
        s = steps.get(rate)
        for q in ("p50", "p95", "p99"):
            fig = Figure(
                f"freshness.{rate}.{q}",
                f"2xx -> visible {q} at {rate} writes/s"
                + (f" (sent {s['achieved']:.0f}/s)" if s else ""),
                s and s[q],
                "s",
                s and s[f"capture_{q}"],
                "capture: 2xx -> on Kafka",
            )
            if q == "p99" and rate in (200, 300):
                fig.goal = "< 1 s" if rate == 200 else "≤ 1 s (median of 3)"
                fig.met = bool(s and s["passed"])
            figures.append(fig)
        if s and rate in GOAL_RATES and s.get("cpu_unit"):
            figures.append(
                Figure(
                    f"freshness.{rate}.cpu_unit_p99",
                    f"stall probe during that {rate} writes/s run: CPU ms of a ~1 ms unit, p99",
                    s["cpu_unit"].get("p99_ms"),
                    "ms",
                    s["cpu_unit"].get("p50_ms"),
                    "its p50",
                )
            )
    passing = [r for r, s in steps.items() if s["passed"]]
    figures.append(
        Figure(
            "freshness.max_rate",
            f"highest steady rate with p99 < 1 s (tried {', '.join(map(str, steps))})",
            float(max(passing)) if passing else 0.0,
            "writes/s",
        )
    )
    return figures


def _mixed_figures(mixed: dict) -> list[Figure]:
    """Ordinary freshness quiet vs loaded (medians over the phases), and the stall probe."""
    label = f"ordinary 2xx -> visible {{q}} at {MIXED_RATE} writes/s, {{phase}}"
    goal = f"≤ {MIXED_GOAL}x quiet"
    if "skipped" in mixed:
        why = mixed["skipped"]
        return [
            skipped(f"freshness.mixed.{phase}.p99", label.format(q="p99", phase=phase), "s", why)
            for phase in ("quiet", "loaded")
        ]
    quiet, loaded = mixed["quiet"], mixed["loaded"]

    def med(runs: list[dict], key: str) -> float | None:
        return median([r[key] for r in runs])

    def unit(runs: list[dict]) -> float | None:
        return median([r["cpu_unit"].get("p99_ms") for r in runs])

    busy = (
        f"while a {mixed['pull_followers']:,}-follower pull author and a "
        f"{mixed['push_followers']:,}-follower push author post every "
        f"{mixed['post_every_s']:g} s"
    )
    figures = [
        Figure(
            f"freshness.mixed.quiet.{q}",
            label.format(q=q, phase="quiet"),
            med(quiet, q),
            "s",
            med(quiet, f"capture_{q}"),
            "capture: 2xx -> on Kafka",
        )
        for q in ("p50", "p99")
    ]
    figures += [
        Figure(
            f"freshness.mixed.loaded.{q}",
            label.format(q=q, phase=busy),
            med(loaded, q),
            "s",
            med(quiet, q),
            f"quiet {q}, same run",
        )
        for q in ("p50", "p99")
    ]
    tail = figures[-1]
    tail.goal = goal
    posted = [p for r in loaded for p in r["big_posts"]]
    tail.met = (
        tail.ratio is not None
        and tail.ratio <= MIXED_GOAL
        and all(r["achieved"] >= 0.9 * MIXED_RATE for r in quiet + loaded)
        and {p["mode"] for p in posted} == {"pull", "push"}
        and all(p["ok"] and p["visible_s"] is not None for p in posted)
        and all(p["every_follower"] for p in posted if p["mode"] == "push")
    )
    figures.append(
        Figure(
            "freshness.mixed.cpu_unit_p99",
            "machine: CPU time of a fixed ~1 ms of Python work, p99, loaded phases",
            unit(loaded),
            "ms",
            unit(quiet),
            "the same, quiet phases",
        )
    )
    return figures
