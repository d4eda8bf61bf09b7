"""Install what the stack needs and is missing: Debian packages, Java 17, Maven artifacts.

Maven artifacts are cached in ~/.m2 and copied under ``var/lib/<name>``; a stamp holding the
pom's hash makes the copy happen once per pom change, so a warm ``up`` does no Maven work.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from feedline.errors import StackError
from feedline.settings import ROOT, Settings
from feedline.stack.layout import Layout

logger = logging.getLogger(__name__)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# binary that must exist -> Debian package that provides it
PACKAGES = {
    str(PG_BIN / "postgres"): "postgresql",
    "redis-server": "redis-server",
    "mvn": "maven",
    "kcat": "kcat",
    "wrk": "wrk",
    "docker-compose": "docker-compose",
}
MAVEN_PROJECTS = ("kafka", "connect", "debezium", "cassandra")


def ensure_all(settings: Settings, lay: Layout) -> None:
    """Install every missing piece, then resolve the jars; raise StackError on failure."""
    ensure_packages(lay, settings.stack.java_home)
    ensure_java(settings, lay)
    for name in MAVEN_PROJECTS:
        ensure_maven(name, settings, lay)
    ensure_debezium_plugin(lay)


def _missing_packages(java_home: str) -> list[str]:
    missing = [pkg for binary, pkg in PACKAGES.items() if not shutil.which(binary)]
    if not Path(java_home, "bin", "java").exists() and "17" in java_home:
        missing.append("openjdk-17-jre-headless")
    return missing


def ensure_packages(lay: Layout, java_home: str = "") -> None:
    """apt-get install the packages whose binaries are missing (needs root)."""
    missing = _missing_packages(java_home)
    if not missing:
        return
    log = lay.log("install")
    if os.geteuid() != 0:
        raise StackError("apt", f"missing {' '.join(missing)}: run sudo apt-get install -y ...")
    logger.info("installing %s (apt-get)", " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with open(log, "ab") as out:
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", *missing]):
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env).returncode:
                raise StackError("apt", f"{' '.join(argv[:2])} failed", str(log))


def ensure_java(settings: Settings, lay: Layout) -> None:
    """Check that settings.stack.java_home holds a Java 17 (Cassandra fails on newer ones)."""
    java = Path(settings.stack.java_home, "bin", "java")
    if not java.exists():
        ensure_packages(lay, settings.stack.java_home)
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise StackError("java", f"no Java 17 at {java}: {exc.strerror}") from None
    if 'version "17.' not in out.stderr:
        first = out.stderr.splitlines()[0] if out.stderr else "no output"
        raise StackError("java", f"{java} is not Java 17 ({first}); set FEEDLINE_JAVA_HOME")


def ensure_maven(name: str, settings: Settings, lay: Layout) -> None:
    """Copy the pom's runtime dependencies into var/lib/<name> unless already done."""
    pom = ROOT / "stack" / name / "pom.xml"
    target = lay.lib / name
    stamp = target / ".stamp"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    logger.info("resolving %s from Maven Central (cached in %s)", name, settings.stack.m2_repo)
    log = lay.log("maven")
    tmp = lay.lib / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    argv = [
        "mvn", "-B", "-q", "-f", str(pom),
        f"-Dmaven.repo.local={settings.stack.m2_repo}",
        "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={tmp}",
    ]  # fmt: skip
    env = dict(os.environ, JAVA_HOME=settings.stack.java_home)
    with open(log, "ab") as out:
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if code:
        raise StackError("maven", f"resolving stack/{name}/pom.xml failed", str(log))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    stamp.write_text(digest)


def ensure_debezium_plugin(lay: Layout) -> None:
    """Unpack Debezium's ``plugin`` tar.gz into Connect's plugin.path (isolated class loader)."""
    archive = next((lay.lib / "debezium").glob("*-plugin.tar.gz"))
    stamp = lay.plugins / ".stamp"
    if stamp.exists() and stamp.read_text() == archive.name:
        return
    shutil.rmtree(lay.plugins, ignore_errors=True)
    lay.plugins.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(lay.plugins, filter="data")
    stamp.write_text(archive.name)
