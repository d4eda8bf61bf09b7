"""CPU seconds per 1,000 mixed writes, by process, and what each event costs the pipeline.

Issue 17's figure, measured as the issue measured it: a fixed number of mixed writes sent
open loop through the bench API at a steady rate (35% shards by authors with about
``cpu_followers`` followers, 35% likes, 20% comments, 10% follows: ``MIX``), and the CPU
time every process of the system used from the first request until the bench pipeline has
applied the last change, from /proc (utime + stime of the process tree, plus what exited
children used: a PostgreSQL backend per connection). Each process's figure is gross (all
the CPU it used meanwhile); its baseline is the same process idle for as long, measured
right before the load (Cassandra, Kafka and Connect spend CPU even when nothing happens),
so the net cost per write is value - baseline.

Beside it, from the bench pipeline's own counters: change events per write, Cassandra
rows (mutations) and statements (a batch counts once) per event, by read-model table, and
the reads the expansions and their re-validations send per event, by statement. The
CDC topics are shared: another writer on the machine would add events and CPU; the
``events per write`` figure shows it (about 2 per write when alone).
"""

from __future__ import annotations

import time

from bench import seed, stall_probe
from bench.client import achieved_rate, open_loop
from bench.context import Ctx
from bench.env import PIPELINE_PORT, WEB_PORT, pipeline_metrics, wait_caught_up
from bench.figures import Figure
from bench.freshness import Workload
from bench.procs import tree_cpu_s
from feedline.stack.lifecycle import services

MIX = (("shard", 35), ("like", 35), ("comment", 20), ("follow", 10))
GOAL_TOTAL_S = 5.5  # issue 17: all processes, CPU seconds per 1,000 mixed writes
IDLE_S = 10.0
ROWS = "feedline_rows_written_total"
STATEMENTS = "feedline_cassandra_statements_total"
READS = "feedline_cassandra_reads_total"
DONE = "feedline_events_done_total"


def run(ctx: Ctx) -> tuple[list[Figure], dict]:
    env, z = ctx.env, ctx.sizes
    users = seed.create_users(env.settings, f"b{env.run_id}c", z.cpu_users)
    edges = seed.follow_graph(env.settings, users, z.cpu_followers, ctx.rng)
    shards = seed.create_shards(env.settings, [u.id for u in users], 2 * len(users), ctx.rng)
    load = Workload(users, edges, shards, {}, None, mix=MIX)  # the freshness load, unprobed
    wait_caught_up(PIPELINE_PORT)
    if z.cpu_warmup_s:
        # Run alone minutes after `make up`, the JVMs were still compiling: 12.9 s per
        # 1,000 writes (Cassandra idle 1.75 s, Connect 2.52 s) against 7.9-8.7 s warm;
        # after 30 s of this load 9.0 s, after 60 s 8.6 s.
        open_loop(WEB_PORT, load.op, z.cpu_rate, z.cpu_warmup_s, threads=32)
        wait_caught_up(PIPELINE_PORT, max_lag=0)
    pids = _pids(ctx)

    def cpu() -> dict[str, float]:
        return {name: tree_cpu_s(pid, reaped=True) for name, pid in pids.items()}

    idle0, t0 = cpu(), time.monotonic()
    time.sleep(IDLE_S)
    idle1, idle_s = cpu(), time.monotonic() - t0
    m0, c0, t0 = pipeline_metrics(PIPELINE_PORT), cpu(), time.monotonic()
    seconds = z.cpu_writes / z.cpu_rate
    with ctx.sampler.phase("cpu load"), stall_probe.alongside(seconds) as unit:
        sent = open_loop(WEB_PORT, load.op, z.cpu_rate, seconds, threads=32)
    wait_caught_up(PIPELINE_PORT, max_lag=0)
    m1, c1, elapsed = pipeline_metrics(PIPELINE_PORT), cpu(), time.monotonic() - t0
    ok = sum(1 for r in sent if r.ok)
    if ok == 0:
        raise RuntimeError(f"no write succeeded: {sent[:3]}")
    per_k = 1000.0 / ok
    gross = {n: (c1[n] - c0[n]) * per_k for n in pids}
    idle = {n: (idle1[n] - idle0[n]) / idle_s * elapsed * per_k for n in pids}
    events = m1.get(DONE, 0.0) - m0.get(DONE, 0.0)
    rows = _by_label(m0, m1, ROWS, "table")
    reads = _by_label(m0, m1, READS, "statement")
    statements = m1.get(STATEMENTS, 0.0) - m0.get(STATEMENTS, 0.0)
    details = {
        "writes_ok": ok,
        "writes_sent": len(sent),
        "sent_per_s": achieved_rate(sent),
        "seconds": round(elapsed, 1),
        "cpu_s_per_1000": {n: round(v, 3) for n, v in gross.items()},
        "idle_cpu_s_per_1000": {n: round(v, 3) for n, v in idle.items()},
        "events": events,
        "rows_per_event": {t: round(n / events, 3) for t, n in rows.items()} if events else {},
        "statements_per_event": round(statements / events, 3) if events else None,
        "reads_per_event": {s: round(n / events, 3) for s, n in reads.items()} if events else {},
        "kinds": _kinds(sent),
        "cpu_unit": unit,
    }
    counts = (sum(rows.values()), statements, sum(reads.values()))
    return [*_figures(gross, idle, ok, events, *counts), _unit_figure(unit)], details


def _unit_figure(unit: dict) -> Figure:
    """The stall probe's fixed unit of Python work during the load (bench/stall_probe.py).

    Every process's CPU time stretches with the host (a busy sibling thread, frequency,
    the VM taking the vCPU away): run to run, the columns above rise and fall together.
    The unit's CPU time in the same minute says how stretched this run was, so two runs'
    CPU figures compare best beside their probe medians.
    """
    return Figure(
        "cpu.unit_p50",
        "stall probe during the load: CPU ms of a fixed ~1 ms unit, p50 (p99 in the JSON)",
        unit.get("p50_ms"),
        "ms",
    )


def _pids(ctx: Ctx) -> dict[str, int]:
    """The processes whose CPU is counted: the stack's services and the bench servers."""
    pids = {"web": ctx.web.proc.pid, "pipeline": ctx.pipeline.proc.pid}
    for svc in services(ctx.env.settings):
        pid = svc.pid()
        if pid is None:
            raise RuntimeError(f"{svc.name} is not running: no CPU to measure")
        pids[svc.name] = pid
    return pids


def _by_label(m0: dict[str, float], m1: dict[str, float], name: str, label: str) -> dict:
    """Return how much counter ``name`` grew from ``m0`` to ``m1``, by ``label``'s value."""
    out = {}
    for key, value in m1.items():
        if key.startswith(name + "{"):
            which = key.split(f'{label}="', 1)[1].split('"', 1)[0]
            out[which] = value - m0.get(key, 0.0)
    return {k: n for k, n in sorted(out.items()) if n}


def _kinds(sent: list) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for r in sent:
        kinds[r.info] = kinds.get(r.info, 0) + 1
    return kinds


def _figures(
    gross: dict[str, float],
    idle: dict[str, float],
    ok: int,
    events: float,
    rows: float,
    statements: float,
    reads: float,
) -> list[Figure]:
    total, total_idle = sum(gross.values()), sum(idle.values())
    figures = [
        Figure(
            "cpu.total",
            f"CPU s per 1,000 mixed writes, all processes ({ok:,} writes)",
            total,
            "s",
            total_idle,
            "the same processes idle for as long",
            goal=f"≤ {GOAL_TOTAL_S} s",
            met=total <= GOAL_TOTAL_S,
        )
    ]
    for name in sorted(gross, key=gross.get, reverse=True):
        figures.append(
            Figure(
                f"cpu.{name}",
                f"CPU s per 1,000 mixed writes: {name}",
                gross[name],
                "s",
                idle[name],
                "idle for as long",
            )
        )
    figures.append(Figure("cpu.events_per_write", "change events per write", events / ok, "ev"))
    if events:
        figures.append(
            Figure("cpu.rows_per_event", "Cassandra rows written per event", rows / events, "rows")
        )
        figures.append(
            Figure(
                "cpu.statements_per_event",
                "Cassandra statements per event (a batch is one)",
                statements / events,
                "stmts",
            )
        )
        figures.append(
            Figure(
                "cpu.reads_per_event",
                "Cassandra reads per event (expansions and their re-validations)",
                reads / events,
                "reads",
            )
        )
    return figures
