"""The three JVM services (Kafka, Kafka Connect, Cassandra), started from Maven jars on Java 17.

Each may run as several nodes (the cluster topology): one per address in the settings
(``cassandra.hosts``, ``kafka.bootstrap``, ``connect.urls``), so the addresses the app
connects to and the nodes the launcher starts are one list. Node ``n`` of a service named
``cassandra`` is ``cassandra-n`` (1-based); a service of one node keeps the plain name.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from feedline.errors import StackError
from feedline.settings import host_ports
from feedline.stack import procs
from feedline.stack.base import HOST, Service, url_port

# What Cassandra's conf/jvm17-server.options passes; the first four are required on 17.
CASSANDRA_JAVA17 = [
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "-Djdk.attach.allowAttachSelf=true",
    "-Dio.netty.tryReflectionSetAccessible=true",
]


class JvmService(Service):
    """A JVM started detached with ``java -cp var/lib/<jars>/* MAIN ARGS``: node ``node``
    (0-based) of the service's ``addresses()``."""

    jars = ""
    main = ""
    base_name = ""

    def __init__(self, ctx, node: int = 0):
        super().__init__(ctx)
        self.node = node
        count = len(self.addresses())
        self.name = self.base_name if count == 1 else f"{self.base_name}-{node + 1}"

    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every node of this service, from the settings."""
        raise NotImplementedError

    @property
    def host(self) -> str:
        return self.addresses()[self.node][0]

    @property
    def port(self) -> int:
        return self.addresses()[self.node][1]

    @property
    def clustered(self) -> bool:
        return len(self.addresses()) > 1

    @property
    def java(self) -> str:
        return str(Path(self.ctx.settings.stack.java_home, "bin", "java"))

    def config_file(self) -> Path:
        """The rendered config its argv names: unique to this node and topology."""
        raise NotImplementedError

    @property
    def marker(self) -> Path:
        return self.config_file()

    @property
    def datadir(self) -> Path:
        """This node's state under var/data (a topology's own var dir)."""
        return self.ctx.lay.data / self.name

    def classpath(self) -> str:
        return str(self.ctx.lay.lib / self.jars / "*")

    def jvm_args(self) -> list[str]:
        raise NotImplementedError

    def args(self) -> list[str]:
        return []

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def timer_slack_us(self) -> int:
        """Let the JVM's idle threads sleep in steps of this many microseconds (procs.timer_slack).

        Cassandra's request threads (its shared executor pool, SEPWorker) look for work
        every 10 us (``LockSupport.parkNanos``) for up to 10 ms after each task: at a steady
        trickle of requests they never stop, and a wake-up every 10 us was most of what
        Cassandra cost at feed rates. Measured on one node with one client: 3.8 ms of CPU
        per trivial read at 100 reads/s, 1.5 ms with 300 us of slack; 0.51 and 0.32 ms at
        1,000/s; a request's latency +0.1 ms (p50 0.83 -> 0.94 ms; closed loop, one node).
        The price: a task handed to a stage while one of its workers is in such a sleep
        waits for that sleep to end, up to the slack per hand-over (a quorum write on the
        cluster makes several). Kafka's and Connect's timed polls cost less, and still fell
        ~0.1 ms per write with it (3 of 3 runs). Failure detection (gossip, Kafka sessions,
        Connect's group) counts in seconds and does not notice.
        """
        return self.ctx.settings.stack.jvm_timer_slack_us

    def prepare(self) -> None:
        """Render configs and format storage before the first start."""

    def start(self) -> None:
        self.prepare()
        argv = [self.java, *self.jvm_args(), "-cp", self.classpath(), self.main, *self.args()]
        procs.spawn(
            argv, self.log, self.pid_file, cwd=self.ctx.lay.var, env=self.env(),
            timer_slack_us=self.timer_slack_us(),
        )  # fmt: skip


def _log4j(svc: Service) -> str:
    target = f"{svc.name}-log4j2.properties"
    path = svc.ctx.lay.render("log4j2.properties", target, log_file=svc.log)
    return f"-Dlog4j2.configurationFile={path}"


def _node_id(node: int) -> int:
    return node + 1  # KRaft node ids start at 1


class Kafka(JvmService):
    """A KRaft node that is both broker and controller (every node votes)."""

    base_name = "kafka"
    jars = "kafka"
    main = "kafka.Kafka"

    def addresses(self) -> list[tuple[str, int]]:
        return host_ports(self.ctx.settings.kafka.bootstrap)

    def ports(self) -> list[int]:
        return [self.port, self.ctx.settings.stack.kafka_controller_port]

    @property
    def node_id(self) -> int:
        """Its KRaft node.id (what clients see as a broker or coordinator id)."""
        return _node_id(self.node)

    def _quorum(self) -> str:
        """A single node bootstraps a dynamic quorum of itself (``format --standalone``);
        a cluster names its three voters statically, which needs no directory ids."""
        port = self.ctx.settings.stack.kafka_controller_port
        if not self.clustered:
            return f"controller.quorum.bootstrap.servers={self.host}:{port}"
        voters = ",".join(f"{_node_id(i)}@{h}:{port}" for i, (h, _) in enumerate(self.addresses()))
        return f"controller.quorum.voters={voters}"

    def jvm_args(self) -> list[str]:
        heap = self.ctx.settings.stack.kafka_heap
        return [f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", _log4j(self)]

    def config_file(self) -> Path:
        return self.ctx.lay.conf / f"{self.name}.properties"

    def args(self) -> list[str]:
        return [str(self.config_file())]

    def _cluster_id(self) -> str:
        """One id for every node of the cluster: made by the first to format, kept in data/."""
        path = self.ctx.lay.data / "kafka-cluster-id"
        if not path.exists():
            path.write_text(_cluster_id())
        return path.read_text().strip()

    def prepare(self) -> None:
        """Render server.properties; format the KRaft storage once (a 2-3 s JVM run)."""
        st, kafka = self.ctx.settings.stack, self.ctx.settings.kafka
        props = self.ctx.lay.render(
            "kafka-server.properties", f"{self.name}.properties",
            node_id=self.node_id, host=self.host, port=self.port,
            controller_port=st.kafka_controller_port, quorum=self._quorum(),
            data_dir=self.datadir, partitions=kafka.partitions,
            replication=kafka.replication_factor, min_isr=kafka.min_insync_replicas,
            # A dead broker is fenced (its partitions led elsewhere) after this: produce to
            # a killed leader stalled 11.1 s with the default 9 s, 3.2 s with 3 s. Shorter
            # (2 s, heartbeat 250 ms) did not shorten the suite's stalls beyond the noise,
            # and risks fencing a live broker that a loaded box starved.
            session_ms=3000 if self.clustered else 9000,
            heartbeat_ms=500 if self.clustered else 2000,
        )  # fmt: skip
        if (self.datadir / "meta.properties").exists():
            return
        standalone = [] if self.clustered else ["--standalone"]
        argv = [self.java, *self.jvm_args(), "-cp", self.classpath(), "kafka.tools.StorageTool",
                "format", "-t", self._cluster_id(), "-c", str(props), *standalone,
                "--ignore-formatted"]  # fmt: skip
        with open(self.log, "ab") as out:
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=120).returncode:
                raise StackError(self.name, "formatting the KRaft storage failed", str(self.log))


def _cluster_id() -> str:
    """Make a Kafka cluster id like ``StorageTool random-uuid`` (base64url, no leading '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class Connect(JvmService):
    """A distributed-mode worker; several workers form one group and share the tasks."""

    base_name = "connect"
    jars = "connect"
    main = "org.apache.kafka.connect.cli.ConnectDistributed"

    def addresses(self) -> list[tuple[str, int]]:
        urls = self.ctx.settings.connect.urls
        return [(urlsplit(u).hostname or HOST, url_port(u, 8083)) for u in urls]

    def ports(self) -> list[int]:
        return [self.port]

    def jvm_args(self) -> list[str]:
        heap = self.ctx.settings.stack.connect_heap
        return [f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", _log4j(self)]

    def config_file(self) -> Path:
        return self.ctx.lay.conf / f"{self.name}.properties"

    def args(self) -> list[str]:
        kafka = self.ctx.settings.kafka
        # Of several workers, one that dies leaves the group after the session timeout and
        # its tasks move after a further delay (Connect waits 5 minutes by default for it
        # to come back: change capture would stop that long). One worker keeps Connect's
        # defaults: there is nobody to move its tasks to.
        session, heartbeat, delay = (6000, 2000, 5000) if self.clustered else (10000, 3000, 300000)
        path = self.ctx.lay.render(
            "connect-worker.properties", self.config_file().name,
            bootstrap=kafka.bootstrap, host=self.host, port=self.port,
            replication=kafka.replication_factor, plugin_path=self.ctx.lay.plugins,
            session_ms=session, heartbeat_ms=heartbeat, rebalance_delay_ms=delay,
        )  # fmt: skip
        return [str(path)]

    def env(self) -> dict[str, str]:
        """Hand the replication role's password to the worker's EnvVarConfigProvider, not
        to its config; the worker gets no other database password."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDLINE_PG_")}
        env["FEEDLINE_PG_REPLICATION_PASSWORD"] = self.ctx.settings.postgres.replication_password
        return env

    def ready(self) -> bool:
        """Ready once the REST API lists the Debezium PostgreSQL plugin."""
        try:
            url = f"http://{self.host}:{self.port}/connector-plugins"
            with urllib.request.urlopen(url, timeout=1) as resp:
                plugins = json.load(resp)
        except (OSError, ValueError):
            return False
        return any(p.get("class", "").endswith("PostgresConnector") for p in plugins)


# What the commit log's sync mode renders to in cassandra.yaml (StackSettings.cassandra_commitlog).
COMMITLOG = {
    "group": "commitlog_sync: group\ncommitlog_sync_group_window: 15ms",
    "periodic": "commitlog_sync: periodic\ncommitlog_sync_period: 10000ms",
}


_LOG_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d+ \[")


def initial_token(node: int, count: int) -> int:
    """Evenly spaced Murmur3 tokens, node 0 at 0 (the single node's token since the start)."""
    return (node * 2**64 // count + 2**63) % 2**64 - 2**63


# Answers only when every replica of system_distributed (three, by default) is up.
ALL_REPLICAS_UP = "SELECT * FROM system_distributed.repair_history LIMIT 1"


class Cassandra(JvmService):
    base_name = "cassandra"
    jars = "cassandra"
    main = "org.apache.cassandra.service.CassandraDaemon"
    stop_timeout = 30.0

    def addresses(self) -> list[tuple[str, int]]:
        port = self.ctx.settings.cassandra.port
        return [(h, port) for h in self.ctx.settings.cassandra.hosts]

    def ports(self) -> list[int]:
        return [self.port, self.ctx.settings.stack.cassandra_storage_port]

    def config_file(self) -> Path:
        return self.ctx.lay.conf / f"{self.name}.yaml"

    @property
    def jmx_port(self) -> int:
        """JMX always binds 127.0.0.1, so each node has its own port there."""
        return self.ctx.settings.stack.cassandra_jmx_port + 100 * self.node

    def endpoints(self) -> list[tuple[str, int]]:
        return [*super().endpoints(), (HOST, self.jmx_port)]

    @property
    def seed(self) -> bool:
        return self.node == 0

    def jvm_args(self) -> list[str]:
        st, lay = self.ctx.settings.stack, self.ctx.lay
        data = self.datadir
        count = len(self.addresses())
        yaml = lay.render(
            "cassandra.yaml", self.config_file().name, port=self.port, host=self.host,
            storage_port=st.cassandra_storage_port, data_dir=data,
            seed=self.addresses()[0][0], token=initial_token(self.node, count),
            commitlog=COMMITLOG[st.cassandra_commitlog],
        )  # fmt: skip
        logback_file = f"{self.name}-logback.xml" if self.clustered else "logback.xml"
        logback = lay.render("logback.xml", logback_file, log_file=self.log)
        # A new cluster's nodes join at once with their tokens; do not wait the default
        # 30 s for gossip to settle on each start (3 nodes up in ~17 s instead of ~126 s).
        quick = ["-Dcassandra.skip_wait_for_gossip_to_settle=0",
                 "-Dcassandra.ring_delay_ms=1000"] if self.clustered else []  # fmt: skip
        jamm = sorted((lay.lib / self.jars).glob("jamm-*.jar"))
        return [
            f"-Xms{st.cassandra_heap}", f"-Xmx{st.cassandra_heap}", "-XX:+UseG1GC",
            *CASSANDRA_JAVA17, *(f"-javaagent:{j}" for j in jamm[:1]),
            "-Djava.net.preferIPv4Stack=true", "-Dcassandra-foreground=yes",
            f"-Dcassandra.config={yaml.as_uri()}", f"-Dcassandra.storagedir={data}",
            f"-Dcassandra.logdir={lay.logs}", f"-Dlogback.configurationFile={logback.as_uri()}",
            f"-Dcassandra.jmx.local.port={self.jmx_port}", *quick,
            "-Dcassandra.shutdown_announce_in_ms=0",
            # The approximate clock (request expiry and timeouts, all of seconds) ticks every
            # 10 ms instead of 2 ms: at 2 ms its thread (ScheduledFastTasks) woke ~500 times a
            # second, 1.5% of a core, half of Cassandra's idle CPU (per-thread CPU from /proc).
            "-Dcassandra.approximate_time_precision_ms=10",
        ]  # fmt: skip

    def prepare(self) -> None:
        """Forget the node's compaction history before each start (the node is stopped).

        Cassandra 5.0.9's startup migration (``SystemKeyspaceMigrator41``) copies
        ``system.compaction_history`` onto itself on every start: its "is the new table
        empty" guard is skipped when the old and new names are the same. It copies one row
        per insert, and under the single node's group commit log each insert waits for a
        sync window (15 ms), so every start took 15 ms per compaction ever run: 104 s of a
        112 s start after a week of tests and benches in one var/. The table only feeds
        ``nodetool compactionhistory``; nothing of Feedline's or of Cassandra's reads it.
        """
        system = self.datadir / "data" / "system"
        for table in system.glob("compaction_history-*"):
            for path in table.iterdir():
                if path.is_file():
                    path.unlink()

    def ready(self) -> bool:
        """Ready once CQL answers (the native transport opens last)."""
        return procs.port_open(self.host, self.port)

    def sees(self, others: set[str]) -> str | None:
        """Return None if this node has ``others`` in its ring and up, else what it lacks.

        Asked of this node alone (a whitelist of one): a driver connected to the cluster
        takes the ring from whichever node its control connection picked. Two questions,
        because each alone passes too early: ``system.peers_v2`` lists the nodes it has
        heard of (kept on disk, so it is full at once on a restart, before gossip marks
        anyone up), and a read at ALL of ``system_distributed`` (replicated to three nodes)
        is refused unless its failure detector has every replica up; but a node that heard
        of nobody yet counts itself as the only replica, so that read alone would pass.
        """
        from cassandra import ConsistencyLevel
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy
        from cassandra.query import SimpleStatement

        from feedline.cassandra import PROTOCOL_VERSION

        alone = ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy([self.host]),
            consistency_level=ConsistencyLevel.ALL, request_timeout=5,
        )  # fmt: skip
        cluster = Cluster(
            [self.host], port=self.port, protocol_version=PROTOCOL_VERSION, connect_timeout=2,
            execution_profiles={EXEC_PROFILE_DEFAULT: alone},
            schema_metadata_enabled=False, token_metadata_enabled=False,
        )  # fmt: skip
        try:
            session = cluster.connect()
            peers = {row.peer for row in session.execute("SELECT peer FROM system.peers_v2")}
            if not others <= peers:
                return f"has not heard of {', '.join(sorted(others - peers))}"
            session.execute(SimpleStatement(ALL_REPLICAS_UP))
            return None
        except Exception as exc:  # not answering yet, or a replica down: the caller polls
            return f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            cluster.shutdown()

    def nodetool(self, *args: str, timeout: float = 600.0) -> str:
        """Run ``nodetool ARGS`` against this node (over its JMX port); return the output.

        A JVM of its own (~0.7 s), on Cassandra's classpath with the same Java 17 flags
        (without them: ``IllegalAccessException ... DirectBuffer.cleaner``).
        """
        argv = [self.java, "-Xmx128m", *CASSANDRA_JAVA17, "-cp", self.classpath(),
                "org.apache.cassandra.tools.NodeTool", "-h", HOST, "-p", str(self.jmx_port),
                *args]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            why = (done.stderr or done.stdout).strip().splitlines()
            raise StackError(self.name, f"nodetool {' '.join(args)}: {why[-1] if why else '?'}")
        # Without a logback config of its own, nodetool logs its DEBUG chatter to stdout.
        return "".join(ln for ln in done.stdout.splitlines(True) if not _LOG_LINE.match(ln))
