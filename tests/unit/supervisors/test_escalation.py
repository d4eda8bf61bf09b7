"""Prove the default escalation really ends the process non-zero from an actor thread."""

import subprocess
import sys
from pathlib import Path

from feedline.supervisors import EXIT_CODE

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import time
from feedline.supervisors import Backoff, ChildSpec, Intensity, Supervisor, launch
from tests.unit.supervisors.fakes import Journal, ref_of, worker

spec = ChildSpec("root", Supervisor, {
    "name": "root",
    "children": [worker(Journal(), "w")],
    "intensity": Intensity(0, 5.0),
    "backoff": Backoff(initial=0.0),
})
root = launch(spec)
ref_of(root, "w").tell("crash")
time.sleep(30)  # the main thread is busy elsewhere: only the actor thread can end us
"""


def test_default_on_escalate_exits_the_process_with_exit_code():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert done.returncode == EXIT_CODE, done.stderr
    assert "root supervisor gave up" in done.stderr
