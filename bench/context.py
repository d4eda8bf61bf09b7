"""What every benchmark receives: the bench environment, its processes and its sizes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bench.env import BenchEnv
from bench.procs import BenchProcess
from bench.resources import RssSampler


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark runs: the full run, or a tiny one that only proves it works."""

    repeats: int = 3
    wrk_seconds: float = 8.0
    wrk_connections: int = 12
    write_users: int = 200
    write_shards: int = 2000
    sink_events: int = 2000
    sink_authors: int = 200
    sink_followers: int = 10
    fanout_sizes: tuple[int, ...] = (10, 1000, 10000, 100000)
    pull_followers: int = 1_000_000  # pull_fanout: the pull author's followers, of which
    pull_readers: int = 2000  # real users whose feeds are read
    fresh_users: int = 300
    fresh_followers: int = 10
    fresh_rates: tuple[int, ...] = (100, 200, 300, 500, 700)
    fresh_seconds: float = 15.0
    # freshness at 100 writes/s, quiet vs while a pull and a push author post (issue 16)
    mixed_seconds: float = 38.0
    mixed_pull_followers: int = 100_000
    mixed_post_every_s: float = 10.0
    read_users: int = 10000
    cpu_users: int = 300  # cpu: users posting, liking, commenting and following
    cpu_followers: int = 6  # follows per user, so ~6 followers per author
    cpu_rate: int = 100  # writes/s
    cpu_writes: int = 3000
    cpu_warmup_s: int = 60  # the same load first, unmeasured: JIT compilers settle
    cap_posts_x: int = 10  # posts into one feed, in multiples of FEEDLINE_FEED_MAX
    hol_followers: int = 20_000
    hol_quiet_s: float = 10.0
    # stream (issue 18): streams held while their users post, at each rate (posts/s)
    stream_clients: int = 1000
    stream_follows: int = 10
    stream_rates: tuple[int, ...] = (100, 200)
    stream_seconds: float = 15.0
    stream_idle: int = 10_000  # idle streams on one process, then a reconnect storm
    stream_idle_authors: int = 100  # whom they follow (100 followers each)
    stream_idle_s: float = 60.0


QUICK = Sizes(
    repeats=1,
    wrk_seconds=1.0,
    wrk_connections=4,
    write_users=10,
    write_shards=50,
    sink_events=100,
    sink_authors=10,
    sink_followers=3,
    fanout_sizes=(10, 100),
    pull_followers=5000,  # still above FEEDLINE_PULL_THRESHOLD (500)
    pull_readers=50,
    fresh_users=30,
    fresh_followers=5,
    fresh_rates=(20, 50),
    fresh_seconds=2.0,
    mixed_seconds=5.0,
    mixed_pull_followers=1_600,
    mixed_post_every_s=2.5,
    read_users=500,
    cpu_users=30,
    cpu_writes=100,
    cpu_rate=50,
    cpu_warmup_s=1,  # the path runs; too short to warm anything
    cap_posts_x=2,
    hol_followers=2000,
    hol_quiet_s=3.0,
    stream_clients=30,
    stream_follows=5,
    stream_rates=(20,),
    stream_seconds=3.0,
    stream_idle=200,
    stream_idle_authors=10,
    stream_idle_s=1.0,
)


@dataclass
class Ctx:
    env: BenchEnv
    sizes: Sizes
    web: BenchProcess
    const: BenchProcess
    pipeline: BenchProcess
    sampler: RssSampler
    rng: random.Random = field(default_factory=lambda: random.Random(8))
