"""Run the benchmark harness in quick mode so it never rots (figures exist, not how fast)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ("write_api", "sink", "fanout", "freshness", "reads", "stream", "resources")

pytestmark = pytest.mark.integration


@pytest.mark.timeout(330)  # the quick run takes 3.5-4 min on this box
def test_bench_quick_produces_every_figure() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=320,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    path = Path(out.stdout.strip().splitlines()[-1].removeprefix("results: "))
    doc = json.loads(path.read_text())
    assert doc["mode"] == "quick"
    assert set(EXPECTED) <= set(doc["benchmarks"])
    for name in EXPECTED:
        section = doc["benchmarks"][name]
        assert "error" not in section, (name, section.get("error"))
        assert section["figures"], name
        for fig in section["figures"]:
            skipped = fig["note"].startswith("not available")
            assert skipped or isinstance(fig["value"], int | float), (name, fig)
