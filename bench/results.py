"""Write a run's JSON and regenerate BENCHMARKS.md from it.

The JSON keeps everything (figures, per-repeat details, the machine); the markdown shows
each figure beside its baseline and the ratio, with the goal and whether it was met.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.env import ROOT

RESULTS = ROOT / "bench" / "results"
METHOD = """\
- **write_api**: wrk, 2 threads x `wrk_connections` for `wrk_seconds`, against the product
  API and the constant Falcon app (`bench/const_app.py`) served by the same
  `feedline/http/gunicorn_conf.py` (3 sync workers), alternating within each repeat.
  create-shard posts as random pre-created users (real bearer tokens); like picks a random
  (user, shard) out of 200 x 2,000, so nearly every request is a real insert. wrk is closed
  loop, so its p99 includes queueing at saturation. *At half peak*: an open-loop Python
  client (wrk2 is not packaged) sends at 0.5x the measured peak and times each request
  from when it was due (no coordinated omission); the constant app at the same rate is
  its baseline.
- **sink**: a dedicated pipeline process (own topics, own group) consumes a burst of N
  Debezium-shaped shard creates whose authors have 10 followers each (13 rows per
  event, plus the fan-out reads); events/s = N / (burst produced -> N more events done,
  from the pipeline's `feedline_events_done_total`). Baseline: the same rows for N other
  shards, prepared statements + `execute_concurrent` (64 in flight), no Kafka, no actors.
- **freshness**: open-loop mixed load through the API (30% shards, 30% likes, 20%
  comments, 10% follows, 10% unfollows; 300 users following 10 others each). About 40
  writes/s are sampled and polled every 40 ms until visible in Cassandra (a shard in a
  follower's feed_by_user, a like/comment/follow row, an unfollow gone). Baseline: the
  same writes' 2xx -> change event on Kafka (Debezium's share). A rate passes when it was
  sent at >= 90% of target, nothing timed out (10 s) and p99 < 1 s; 100, 200 and 300/s
  (issue 17's goal rate) run three times and the median-p99 run is shown, with the stall
  probe measured alongside it.
- **freshness, quiet vs loaded** (issue 16): the same load and probe at 100 writes/s in
  alternating phases (quiet, loaded, `repeats` times each, 38 s; medians over phases).
  Loaded adds a pull author with 100,000 followers and a push author just under the
  threshold (`FEEDLINE_PULL_THRESHOLD` - 1 = 1,499), each posting through the API every
  10 s, 5 s apart. Their followers are synthetic ids written directly into
  followers_by_user (the pull author's decision written settled, one real reader), their
  PostgreSQL follower counts set to agree; the run fails if a mode check moved either.
  Goal: loaded p99 <= 1.5x the quiet p99, with the load sent at >= 90% of the rate and
  every big post visible (push: the row in all its followers' feeds; pull: in the
  reader's `GET /v1/feed`). Each big post's visibility, the rows the pipeline wrote per
  phase by table (`feedline_rows_written_total`) and the ordinary p99 split by whether a
  push post was on its way to its followers are in the JSON; beside the figure, the stall
  probe's CPU-time p99 in each kind of phase (see reads).
- **fanout**: followers written directly into followers_by_user (100,000 follows through
  the API would take longer than the measurement); the clock runs from the API's 201 for
  the shard to the first poll where the pipeline has finished its events and a sample of
  followers has the row; then every follower is checked (a 2,000 sample above 10,000).
  Baseline: the same feed rows with the driver alone. Growth: log-log slope over sizes
  >= 1,000 (1.0 = linear); ratios per 10x are in the JSON.
- **pull_fanout** (issue 16): one author's 1,000,000 followers written directly into
  followers_by_user (2,000 of them real users, the rest synthetic ids) with the state a
  finished push -> pull sweep leaves (settled `pull` decision, the readers' edges and
  pull-list entries) and PostgreSQL's follower count set to agree. Clock: the API's 201
  for the post -> the first `GET /v1/feed` of a reader that lists it (the web merges
  pull authors at read time). 12 clients poll, always reading next the reader whose
  last miss is oldest; the sample is read in cohorts of 250 (one post each), because a
  round over N readers takes N / (feed reads/s) even once the post is visible (one post
  polled by all 2,000 put ~2 s of poller into the p99: last miss p99 0.1 s). The figure
  is the first hit (an upper bound); the last miss (lower bound) and each cohort's
  round time are in the JSON. Baseline: two push authors followed by 1,000 of the
  readers each, posting in the same cohorts, same poller. Rows: the pipeline's
  `feedline_rows_written_total` before the post and after it is done (a few seconds;
  the shared CDC topics' other traffic in that window counts too), per post, beside a
  push post's; also the reads of followers_by_user in that window (Cassandra's
  `system_views.coordinator_read_latency`): one page, where a sweep would read 2,000.
- **reads**: users' feeds (20 items) and a shard pool are written directly into the
  bench keyspace; hit = a few users over and over, also against a second web with its
  near cache off; miss = each user once after FLUSHDB (feed window, hydrated shards and
  profiles all cold at first); Zipf = P(rank r) ~ 1/r over all users while users post,
  after a warm-up to steady state, hit ratio of feed windows from the web's own
  `feedline_read_cache` counters; window miss = only the feed windows dropped (shards and
  profiles cached), wrk at 3 connections and an open-loop client at 100 misses/s, with the
  web's CPU per request from /proc. Alongside the open-loop misses a separate process
  times a fixed ~1 ms of Python work (`bench/stall_probe.py`): its CPU-time p99/p50 is how
  far this machine stretches any request's CPU at the tail, whatever the code does.
- **reads, reader of 5 pull authors** (issue 16; `bench/pull_reads.py` seeds it): 3 readers
  each follow 5 pull authors of 30 shards (settled pull decisions, pull lists and follow
  edges written directly; their own feed partitions empty), beside 3 push twins whose
  feed partitions hold the same 150 shards; first, every reader's first page on both webs
  is checked to be the same 20 items. Cache hit: wrk "hot" over the 3 readers at
  `wrk_connections`, near cache on (goal >= 0.8x the twins) and off. Window miss: a Python
  closed loop, one connection per reader (3), deletes the reader's feed window before each
  read (shards, profiles, pull sources and authors' windows stay cached), checks the page,
  and the web's cache counters must show one feed-window miss per read and no other miss;
  goal p50 <= 2x the twins. Every window missing: the reader's 5 authors' windows deleted
  too (informational: an author's window is shared by all their readers, so in steady
  state it misses once per post of that author, not per read). With pull on, a twin's page
  also looks up its (cached, empty) pull sources, as every push reader's does.
- **cap**: a reader follows two authors (follows by plain SQL), who post 10x
  `FEEDLINE_FEED_MAX` (8,000 at the default 800) by plain SQL, 100 per transaction; the
  bench pipeline carries and trims them. Once it is caught up: the rows of the reader's
  feed and feed-index partitions beside the cap (goal <= 1.1x), and the most feed rows
  counted (every 0.25 s) while the posts were carried; tombstone cells read, from
  Cassandra's tracing, by the web's first read of a feed (its 101-row window; goal 0) and
  by a read of the whole partition (what paging past the cap meets); tombstone warnings in
  var/log/cassandra.log on the bench feeds during the benchmark, the pipeline's own trim
  reads included (goal 0). Baseline: a feed written by the driver with as many rows, whose
  trimmed rows are deleted one per row, read the same way (its whole read is over
  Cassandra's 1,000-tombstone warning at full size, so it also shows the log scan works).
- **head_of_line**: 10 authors post 20 shards/s in all (plain SQL); freshness = commit ->
  in the author's one reader's feed (polled every 20 ms), before and while a push author
  with 20,000 followers (seeded in the read model; PostgreSQL's follower_count stays 0, so
  it stays push, and the run checks a feed row per follower was written) posts once, until
  that post is in every follower's feed. Each mode runs in a pipeline of its own (own
  keyspace and group) with the bench pipeline stopped meanwhile, so each post is carried
  once: the product's steps of 500 (`FEEDLINE_EXPANSION_CHUNK`) beside the whole fan-out
  in one step (the baseline). One run per mode: a p99 over ~200-400 posts.
- **cpu** (issue 17): `cpu_writes` mixed writes (35% shards by authors with ~6 followers,
  35% likes, 20% comments, 10% follows) sent open loop at `cpu_rate`/s through the bench
  API; CPU seconds (utime + stime from /proc, the process tree plus its reaped children)
  of every process from the first request until the bench pipeline has applied the last
  change, per 1,000 successful writes. Baseline: the same processes idle for as long,
  measured right before (Cassandra, Kafka and Connect work when idle too). Events per
  write, Cassandra rows (mutations) and statements (a batch counts once) per event come
  from the bench pipeline's counters, by table in the JSON; so do the reads per event
  that the expansions and their re-validations send (`feedline_cassandra_reads_total`,
  by statement in the JSON). Each read costs Cassandra about as much CPU as a written
  partition here (~0.6-1 ms on this box, measured apart), so reads count like writes.
  Beside them, the stall probe's unit (bench/stall_probe.py) timed during the load: every
  process's CPU time stretches with the host, so the columns rise and fall together from
  run to run (13.0-14.9 s total for the same code within an hour); compare runs next to
  their probe medians, and steps by alternating runs of both. The JVMs must be warm: for
  minutes after a restart their JIT compilers add seconds (a cpu run 3 minutes after one
  had Cassandra at 7.4 s instead of ~4, Connect at 3.3 instead of ~0.7), so the same load
  runs `cpu_warmup_s` first, unmeasured.
- **stream** (issue 18, `bench/stream.py`; clients: `bench/sse_client.py`, raw-socket
  asyncio SSE clients in one child process whose CPU is reported): a stream process on its
  own port. *Delivery*: `stream_clients` users (each following `stream_follows` others,
  seeded by SQL and applied by the bench pipeline first) hold one stream each while their
  posts go through the API at each of `stream_rates` (open loop, authors in turn). A child
  subscribed to the notice channel notes when each `shard A S MS` notice arrives (published
  once the post's writes and cache deletes are done): notice -> `item` event is the
  stream's share (goal p99 <= 100 ms), API 2xx -> event end to end, 2xx -> notice (the
  pipeline's share) the baseline; every delivery is checked (missing, repeated; an item
  already pushed below the reader's 20-item view is counted apart). Stall probe alongside.
  *Scale*: `stream_idle` users each following one of `stream_idle_authors` authors open a
  stream each (batches of 1,000) on a fresh process; its VmRSS and CPU over `stream_idle_s`
  of idle streams (heartbeats only), beside the same process with none. *Reconnect storm*:
  all streams closed at once, each author posts once, all reconnect at once with their
  Last-Event-ID; timed to all open and all caught up; each must get exactly the one post.
- **resources**: peak VmRSS (from /proc, summed over the process tree) while each load
  ran, beside the same process's RSS idle after start.
"""
MARKDOWN = ROOT / "BENCHMARKS.md"


def machine(settings: Any) -> dict[str, Any]:
    """Cores, RAM, CPU, kernel and the versions of everything measured."""
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    versions = {
        p: _dist(p)
        for p in (
            "falcon",
            "gunicorn",
            "cassandra-driver",
            "confluent-kafka",
            "pykka",
            "psycopg2-binary",
            "redis",
        )
    }
    versions["python"] = platform.python_version()
    lib = settings.stack.lib_dir
    for name, pattern in (
        ("kafka", r"kafka_2\.13-(.+)\.jar"),
        ("debezium", r"debezium-connector-postgres-(.+)\.jar"),
        ("cassandra", r"cassandra-all-(.+)\.jar"),
    ):
        found = [m.group(1) for p in lib.rglob("*.jar") if (m := re.fullmatch(pattern, p.name))]
        versions[name] = found[0] if found else None
    versions["postgresql"] = _cmd(["psql", "--version"])
    versions["redis-server"] = _cmd(["redis-server", "--version"])
    versions["wrk"] = _cmd(["wrk", "--version"])
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(int(mem) / 1024 / 1024, 1),
        "cpu": cpu.group(1) if cpu else platform.processor(),
        "kernel": platform.release(),
        "versions": versions,
    }


def _dist(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cmd(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return ((out.stdout or out.stderr).strip().splitlines() or [""])[0][:80]


def write(doc: dict[str, Any], out_dir: Path, markdown: Path | None) -> Path:
    """Write ``<date>.json`` into ``out_dir`` and, for a full run, the markdown table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    path = out_dir / f"{date}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    if markdown is not None:
        markdown.write_text(
            render(doc, path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        )
    return path


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "n/a"
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return f"{text} {unit}".strip()


def table(doc: dict[str, Any]) -> str:
    rows = [
        "| benchmark | figure | value | baseline (same run) | ratio | goal | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for bench, section in doc["benchmarks"].items():
        for f in section["figures"]:
            base = (
                f"{_num(f['baseline'], f['unit'])} ({f['baseline_label']})"
                if f["baseline_label"]
                else ""
            )
            if f["baseline_label"] and f["baseline"] is None:
                base = f"n/a ({f['baseline_label']})"
            ratio = f"{f['ratio']:.2f}x" if f["ratio"] is not None else ""
            met = {True: "yes", False: "**no**", None: ""}[f["met"]]
            value = _num(f["value"], f["unit"]) if f["value"] is not None else f["note"] or "n/a"
            rows.append(
                f"| {bench} | {f['label']} | {value} | {base} | {ratio} | {f['goal']} | {met} |"
            )
    return "\n".join(rows)


def render(doc: dict[str, Any], json_path: Path) -> str:
    m = doc["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    notes = "\n".join(f"- {n}" for n in doc.get("notes", []))
    return f"""# Benchmarks

Every figure is measured beside its baseline **in the same run** on the same machine,
so ratios hold even where absolute numbers drift (2 shared, noisy cores). Values are
medians over the repeats; the full per-repeat data is in [`{json_path}`]({json_path}).
This file is generated by `make bench` (bench/results.py): edit the harness, not the table.

## How to rerun

```sh
make bench        # stack up, every benchmark (~{doc.get("minutes", "?")} min), JSON + this file
make bench-quick  # each benchmark at a tiny size (~1 min); output under var/bench/ only
```

Benchmark processes run on their own ports (web 18000, pipeline 18001, constant app 18002,
sink pipeline 18003), their own consumer groups, the `feedline_bench` keyspace (recreated
each run) and Redis db 7, so a developer's `make up` is not disturbed. See bench/README.md.

## Machine

Run `{doc["run_id"]}` on {doc["date"]}: {m["cores"]} cores ({m["cpu"]}), {m["ram_gib"]} GiB RAM,
Linux {m["kernel"]}. {versions}.

## Results

{table(doc)}

## What the figures mean

{METHOD}\n{notes}
"""


def main(argv: list[str] | None = None) -> int:
    """Re-render BENCHMARKS.md from a results JSON (after editing the notes or the layout)."""
    import sys

    path = Path((argv or sys.argv[1:])[0]).resolve()
    MARKDOWN.write_text(render(json.loads(path.read_text()), path.relative_to(ROOT)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
