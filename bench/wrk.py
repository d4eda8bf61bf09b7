"""Run wrk against 127.0.0.1 with one of the Lua scripts in bench/lua and parse its JSON.

Each script is prefixed with lua/common.lua (token loading, per-thread RNG seeds, a
``done`` hook printing one ``WRKJSON`` line), so every run reports the same fields. wrk
stops by itself after ``duration`` seconds.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class WrkRun:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non2xx: int


def run(
    work: Path, script: str, port: int, duration: float, connections: int, args: list[str] = ()
) -> WrkRun:
    """Run ``lua/<script>.lua`` for ``duration`` s with ``connections`` on two threads."""
    combined = work / f"wrk-{script}.lua"
    combined.write_text(
        (LUA / "common.lua").read_text() + "\n" + (LUA / f"{script}.lua").read_text()
    )
    argv = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(combined),
        f"http://127.0.0.1:{port}",
        "--",
        *args,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.stdout[-500:]} {out.stderr[-500:]}")
    d = json.loads(line.removeprefix("WRKJSON "))
    seconds = d["duration_us"] / 1e6
    return WrkRun(
        rps=d["requests"] / seconds if seconds else 0.0,
        p50_ms=d["p50_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        requests=d["requests"],
        errors=d["errors"],
        non2xx=d["non2xx"],
    )
