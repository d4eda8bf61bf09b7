"""The three JVM services (Kafka, Kafka Connect, Cassandra), started from Maven jars on Java 17."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request
import uuid
from pathlib import Path

from feedline.errors import StackError
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
    """A JVM started detached with ``java -cp var/lib/<jars>/* MAIN ARGS``."""

    jars = ""
    main = ""

    @property
    def java(self) -> str:
        return str(Path(self.ctx.settings.stack.java_home, "bin", "java"))

    def classpath(self) -> str:
        return str(self.ctx.lay.lib / self.jars / "*")

    def jvm_args(self) -> list[str]:
        raise NotImplementedError

    def args(self) -> list[str]:
        return []

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        """Render configs and format storage before the first start."""

    def start(self) -> None:
        self.prepare()
        argv = [self.java, *self.jvm_args(), "-cp", self.classpath(), self.main, *self.args()]
        procs.spawn(argv, self.log, self.pid_file, cwd=self.ctx.lay.var, env=self.env())


def _log4j(svc: Service) -> str:
    target = f"{svc.name}-log4j2.properties"
    path = svc.ctx.lay.render("log4j2.properties", target, log_file=svc.log)
    return f"-Dlog4j2.configurationFile={path}"


class Kafka(JvmService):
    name = "kafka"
    jars = "kafka"
    main = "kafka.Kafka"

    def ports(self) -> list[int]:
        return [self.port, self.ctx.settings.stack.kafka_controller_port]

    @property
    def port(self) -> int:
        return int(self.ctx.settings.kafka.bootstrap.rsplit(":", 1)[1])

    @property
    def datadir(self) -> Path:
        return self.ctx.lay.data / "kafka"

    def jvm_args(self) -> list[str]:
        heap = self.ctx.settings.stack.kafka_heap
        return [f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", _log4j(self)]

    def args(self) -> list[str]:
        return [str(self.ctx.lay.conf / "kafka.properties")]

    def prepare(self) -> None:
        """Render server.properties; format the KRaft storage once (a 2-3 s JVM run)."""
        st, kafka = self.ctx.settings.stack, self.ctx.settings.kafka
        props = self.ctx.lay.render(
            "kafka-server.properties", "kafka.properties",
            port=self.port, controller_port=st.kafka_controller_port,
            data_dir=self.datadir, partitions=kafka.partitions,
        )  # fmt: skip
        if (self.datadir / "meta.properties").exists():
            return
        argv = [self.java, *self.jvm_args(), "-cp", self.classpath(), "kafka.tools.StorageTool",
                "format", "-t", _cluster_id(), "-c", str(props), "--standalone",
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
    name = "connect"
    jars = "connect"
    main = "org.apache.kafka.connect.cli.ConnectDistributed"

    def ports(self) -> list[int]:
        return [url_port(self.ctx.settings.connect.url, 8083)]

    def jvm_args(self) -> list[str]:
        heap = self.ctx.settings.stack.connect_heap
        return [f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", _log4j(self)]

    def args(self) -> list[str]:
        path = self.ctx.lay.render(
            "connect-worker.properties", "connect.properties",
            bootstrap=self.ctx.settings.kafka.bootstrap, port=self.ports()[0],
            plugin_path=self.ctx.lay.plugins,
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
            url = f"http://{HOST}:{self.ports()[0]}/connector-plugins"
            with urllib.request.urlopen(url, timeout=1) as resp:
                plugins = json.load(resp)
        except (OSError, ValueError):
            return False
        return any(p.get("class", "").endswith("PostgresConnector") for p in plugins)


class Cassandra(JvmService):
    name = "cassandra"
    jars = "cassandra"
    main = "org.apache.cassandra.service.CassandraDaemon"
    stop_timeout = 30.0

    def ports(self) -> list[int]:
        st = self.ctx.settings.stack
        return [self.ctx.settings.cassandra.port, st.cassandra_storage_port, st.cassandra_jmx_port]

    def jvm_args(self) -> list[str]:
        st, lay = self.ctx.settings.stack, self.ctx.lay
        data = lay.data / "cassandra"
        yaml = lay.render(
            "cassandra.yaml", "cassandra.yaml", port=self.ctx.settings.cassandra.port,
            storage_port=st.cassandra_storage_port, data_dir=data,
        )  # fmt: skip
        logback = lay.render("logback.xml", "logback.xml", log_file=self.log)
        jamm = sorted((lay.lib / self.jars).glob("jamm-*.jar"))
        return [
            f"-Xms{st.cassandra_heap}", f"-Xmx{st.cassandra_heap}", "-XX:+UseG1GC",
            *CASSANDRA_JAVA17, *(f"-javaagent:{j}" for j in jamm[:1]),
            "-Djava.net.preferIPv4Stack=true", "-Dcassandra-foreground=yes",
            f"-Dcassandra.config={yaml.as_uri()}", f"-Dcassandra.storagedir={data}",
            f"-Dcassandra.logdir={lay.logs}", f"-Dlogback.configurationFile={logback.as_uri()}",
            f"-Dcassandra.jmx.local.port={st.cassandra_jmx_port}",
            "-Dcassandra.shutdown_announce_in_ms=0",
            # The approximate clock (request expiry and timeouts, all of seconds) ticks every
            # 10 ms instead of 2 ms: at 2 ms its thread (ScheduledFastTasks) woke ~500 times a
            # second, 1.5% of a core, half of Cassandra's idle CPU (per-thread CPU from /proc).
            "-Dcassandra.approximate_time_precision_ms=10",
        ]  # fmt: skip

    def ready(self) -> bool:
        """Ready once CQL answers (the native transport opens last)."""
        return procs.port_open(HOST, self.ports()[0])
