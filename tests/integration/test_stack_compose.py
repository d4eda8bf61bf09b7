"""docker/compose.yml stays a valid file with the same five services and the init step."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from feedline.settings import ROOT


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose missing")
def test_compose_file_validates():
    out = subprocess.run(
        ["docker-compose", "-f", "docker/compose.yml", "config", "--services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    services = set(out.stdout.split())
    assert services == {"postgres", "redis", "kafka", "connect", "cassandra", "init"}
