"""A private PostgreSQL 15 cluster under the var dir, logical WAL on, 127.0.0.1 only.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to the
``postgres`` user. Only the OS users root/postgres may log in as the superuser (peer auth
over a socket in a directory of ours); the application role authenticates with a password.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import pwd
import signal
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql

from feedline.errors import StackError
from feedline.stack.base import HOST, Service
from feedline.stack.install import PG_BIN

# Where the cluster lives when the postgres user cannot reach the var dir (e.g. under /root).
ALT_ROOT = Path("/var/lib/feedline")

HBA = """\
local all postgres peer map=admin
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
"""


class Postgres(Service):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for Debezium's session

    @property
    def home(self) -> Path:
        """Root of the cluster's files: the var dir, or one the postgres user can reach."""
        var = self.ctx.lay.var
        if os.geteuid() != 0 or _reachable(var):
            return var
        return ALT_ROOT / hashlib.sha256(str(var).encode()).hexdigest()[:12]

    @property
    def marker(self) -> Path:
        return self.home

    @property
    def datadir(self) -> Path:
        return self.home / "data" / "postgres"

    @property
    def sockdir(self) -> Path:
        return self.home / "run" / "postgres"

    @property
    def log(self) -> Path:
        return self.home / "log" / "postgres.log"

    @property
    def pid_file(self) -> Path:
        return self.datadir / "postmaster.pid"

    def ports(self) -> list[int]:
        return [self.ctx.settings.postgres.port]

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def _own(self, *paths: Path) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in paths:
                os.chown(path, user.pw_uid, user.pw_gid)

    def start(self) -> None:
        """initdb once, then pg_ctl start -w (blocks until PostgreSQL accepts connections)."""
        for path in (self.datadir.parent, self.sockdir.parent, self.log.parent):
            path.mkdir(parents=True, exist_ok=True, mode=0o755)
        for path in (self.datadir, self.sockdir):
            path.mkdir(exist_ok=True, mode=0o700)
        self.log.touch()
        self._own(self.datadir, self.sockdir, self.log)
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb()
        opts = (
            f"-c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 "
            f"-p {self.ports()[0]} -c listen_addresses={HOST} -k {self.sockdir}"
        )
        timeout = int(self.ctx.settings.stack.start_timeout_s)
        argv = [str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log), "-w"]
        self._run([*argv, "-t", str(timeout), "-o", opts, "start"], "pg_ctl start failed")
        self.bootstrap()

    def _initdb(self) -> None:
        self._run(
            [str(PG_BIN / "initdb"), "-D", str(self.datadir), "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256"],
            "initdb failed",
        )  # fmt: skip
        (self.datadir / "pg_hba.conf").write_text(HBA)
        users = {"postgres", "root", getpass.getuser()}
        ident = "".join(f"admin {user} postgres\n" for user in sorted(users))
        (self.datadir / "pg_ident.conf").write_text(ident)

    def _run(self, argv: list[str], cause: str) -> None:
        with open(self.log, "ab") as out:
            proc = subprocess.run(
                self._as_owner(argv), stdout=out, stderr=subprocess.STDOUT, cwd=self.datadir
            )
        if proc.returncode:
            raise StackError(self.name, cause, str(self.log))

    def admin(self):
        """Connect as the superuser over the private socket (peer auth, no password)."""
        return psycopg2.connect(
            host=str(self.sockdir), port=self.ports()[0], user="postgres", dbname="postgres"
        )

    def bootstrap(self) -> None:
        """Create (or refresh) the application role and its database; idempotent."""
        pg = self.ctx.settings.postgres
        role = sql.Identifier(pg.user)
        conn = self.admin()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (pg.user,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(
                    sql.SQL(verb + " ROLE {} LOGIN REPLICATION PASSWORD %s").format(role),
                    (pg.password,),
                )
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (pg.database,))
                if not cur.fetchone():
                    db = sql.Identifier(pg.database)
                    cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, role))
        finally:
            conn.close()


def _reachable(path: Path) -> bool:
    """Tell whether any user may traverse ``path`` and its ancestors (postgres must)."""
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents) if p.exists())
