"""A private PostgreSQL 15 cluster under the var dir, logical WAL on, 127.0.0.1 only.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to the
``postgres`` user. Only the OS users root/postgres may log in as the superuser (peer auth
over a socket in a directory of ours); every other role authenticates with a password.

Roles, least privilege (:func:`ensure_roles`, idempotent, run on every ``stack up``):

- the **owner** (``FEEDLINE_PG_OWNER_USER``, default ``feedline``) owns the database and
  every object in it; migrations run as it. No superuser, CREATEROLE, CREATEDB or REPLICATION.
- the **application** role (``FEEDLINE_PG_USER``, default ``feedline_app``): the web app,
  verify, rebuild, the bench seeding and the tests. A member of ``feedline_dml``, which
  migration 0003 grants SELECT/INSERT/UPDATE/DELETE on the tables and USAGE on the
  sequences: it can create nothing, drop nothing, alter nothing, and cannot replicate.
- the **replication** role (``FEEDLINE_PG_REPLICATION_USER``, default
  ``feedline_replication``): Debezium. LOGIN REPLICATION, a member of ``feedline_cdc``
  (SELECT on the five published tables, for the initial snapshot).

The group roles have fixed names so that migrations (plain SQL, run by the owner) can grant
to them whatever the login roles are called. No role but these three may connect to the
database. Docker compose runs the same function as its ``init`` step
(``python -m feedline.stack.postgres``).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

from feedline.errors import ConfigError, StackError
from feedline.settings import PostgresSettings
from feedline.stack.base import HOST, Service
from feedline.stack.install import PG_BIN

logger = logging.getLogger(__name__)

# Group roles (NOLOGIN) that migrations grant to; the login roles are their members.
DML_GROUP = "feedline_dml"
CDC_GROUP = "feedline_cdc"
# Attributes every login role gets explicitly, so a role made by hand is brought back.
_PLAIN = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"

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
        return self.datadir  # postgres -D <datadir>

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

    def admin(self, database: str = "postgres"):
        """Connect as the superuser over the private socket (peer auth, no password)."""
        return psycopg2.connect(
            host=str(self.sockdir), port=self.ports()[0], user="postgres", dbname=database
        )

    def bootstrap(self) -> None:
        """Create (or refresh) the roles and the database, and the database's grants."""
        pg = self.ctx.settings.postgres
        with _autocommit(self.admin()) as conn:
            ensure_roles(conn, pg)
        with _autocommit(self.admin(pg.database)) as conn:
            ensure_database_grants(conn, pg)

    def drop_legacy_replication(self, connector_user: str | None) -> None:
        """Take REPLICATION from the owner once Debezium logs in as the replication role.

        Before the three roles, one role owned the database and Debezium used it. A stack
        started then keeps running that connector until Connect restarts with the
        replication role's password (see feedline.connector.register); until then the
        owner keeps REPLICATION, or the running connector could not reconnect.
        """
        pg = self.ctx.settings.postgres
        if connector_user != pg.replication_user:
            if connector_user is not None:
                logger.warning(
                    "postgres: %s keeps REPLICATION while the connector still logs in as it"
                    " (restart Connect: make down && make stack-up)",
                    connector_user,
                )
            return
        with _autocommit(self.admin()) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s AND rolreplication", (pg.owner_user,)
            )
            if cur.fetchone():
                cur.execute(
                    sql.SQL("ALTER ROLE {} NOREPLICATION").format(sql.Identifier(pg.owner_user))
                )
                logger.info("postgres: took REPLICATION from %s", pg.owner_user)


@contextlib.contextmanager
def _autocommit(conn):
    """Use ``conn`` in autocommit mode (role and database DDL), and close it after."""
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def ensure_roles(conn, pg: PostgresSettings) -> None:
    """Create or refresh the group roles, the three login roles and the database.

    Needs a superuser connection in autocommit. Idempotent: attributes and passwords are
    set again on every run, so changing a password setting and re-running applies it. The
    owner's REPLICATION is left as found (see :meth:`Postgres.drop_legacy_replication`).
    """
    names = {"FEEDLINE_PG_USER": pg.user, "FEEDLINE_PG_OWNER_USER": pg.owner_user,
             "FEEDLINE_PG_REPLICATION_USER": pg.replication_user}  # fmt: skip
    if len(set(names.values())) != 3:
        raise StackError("postgres", f"the three roles must be distinct, got {names}")
    with conn.cursor() as cur:
        for group in (DML_GROUP, CDC_GROUP):
            if not _role_exists(cur, group):
                cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
        _login_role(cur, pg.owner_user, pg.owner_password, "")
        _login_role(cur, pg.user, pg.password, "NOREPLICATION")
        _login_role(cur, pg.replication_user, pg.replication_password, "REPLICATION")
        for member, group in ((pg.user, DML_GROUP), (pg.replication_user, CDC_GROUP)):
            cur.execute(sql.SQL("GRANT {} TO {}").format(*map(sql.Identifier, (group, member))))
        db, owner = sql.Identifier(pg.database), sql.Identifier(pg.owner_user)
        cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                    (pg.database,))  # fmt: skip
        row = cur.fetchone()
        if row is None:
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, owner))
        elif row[0] != pg.owner_user:
            cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, owner))
        cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        for role in (pg.user, pg.replication_user):
            cur.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, sql.Identifier(role))
            )


def ensure_database_grants(conn, pg: PostgresSettings) -> None:
    """Inside the database (superuser, autocommit): nobody but the owner creates objects.

    PostgreSQL 15 already keeps CREATE on schema ``public`` from PUBLIC; saying it again
    covers a cluster initialised by an older version. Table grants are migration 0003's.
    """
    with conn.cursor() as cur:
        cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def _role_exists(cur, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
    return cur.fetchone() is not None


def _login_role(cur, name: str, password: str, extra: str) -> None:
    verb = "ALTER" if _role_exists(cur, name) else "CREATE"
    if verb == "CREATE" and not extra:
        extra = "NOREPLICATION"
    cur.execute(
        sql.SQL(f"{verb} ROLE {{}} {_PLAIN} {extra} PASSWORD %s").format(sql.Identifier(name)),
        (password,),
    )


def _reachable(path: Path) -> bool:
    """Tell whether any user may traverse ``path`` and its ancestors (postgres must)."""
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents) if p.exists())


def main() -> int:
    """Create the roles and grants on a server we do not run (docker compose's init step).

    Connects to the ``postgres`` database as a superuser named by libpq's own environment
    (``PGUSER``, ``PGPASSWORD``) at ``FEEDLINE_PG_HOST``/``FEEDLINE_PG_PORT``.
    """
    from feedline.settings import load

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = load()
    try:  # it sets all three roles' passwords: none may be a public default
        settings.require_production_ready(uses=("owner", "app", "replication"))
    except ConfigError as exc:
        print(f"feedline roles: {exc}", file=sys.stderr)
        return 2
    pg = settings.postgres
    for database, step in (("postgres", ensure_roles), (pg.database, ensure_database_grants)):
        conn = psycopg2.connect(host=pg.host, port=pg.port, dbname=database, connect_timeout=10)
        with _autocommit(conn) as conn:
            step(conn, pg)
    print(
        f"postgres roles: owner {pg.owner_user}, app {pg.user}, replication {pg.replication_user}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
