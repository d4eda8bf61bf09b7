"""The two topologies of the local stack: what FEEDLINE_TOPOLOGY=cluster changes in the
settings, and the nodes (names, addresses, ports, rendered configs) the launcher derives
from those same settings. Pure: nothing is started."""

from __future__ import annotations

import pytest

from feedline import settings as settings_mod
from feedline.errors import ConfigError
from feedline.stack.jvm import Kafka, initial_token
from feedline.stack.lifecycle import Stack


def load(monkeypatch, topology: str | None, **env: str) -> settings_mod.Settings:
    for name in [*settings_mod.TOPOLOGIES["cluster"], "FEEDLINE_VAR_DIR", "FEEDLINE_TOPOLOGY"]:
        monkeypatch.delenv(name, raising=False)
    if topology is not None:
        monkeypatch.setenv("FEEDLINE_TOPOLOGY", topology)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_mod.load()


def test_single_is_the_default_and_unchanged(monkeypatch):
    s = load(monkeypatch, None)
    assert s.stack.topology == "single"
    assert s.cassandra.hosts == ("127.0.0.1",)
    assert s.kafka.bootstrap == "127.0.0.1:9092"
    assert (s.kafka.replication_factor, s.kafka.min_insync_replicas) == (1, 1)
    assert s.connect.urls == ("http://127.0.0.1:8083",)
    assert s.cassandra.local_dc == ""  # the driver's choice: any deployment's DC name
    assert s.stack.cassandra_commitlog == "group"
    assert s.stack.lib_dir == s.stack.var_dir / "lib"
    assert s.cassandra.speculative_delay_s == 0  # no other replica to ask


def test_cluster_replicates_everything_beside_the_single_stack(monkeypatch):
    s = load(monkeypatch, "cluster")
    assert s.cassandra.hosts == ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    assert "'datacenter1': 3" in s.cassandra.replication
    assert s.cassandra.consistency == "LOCAL_QUORUM"
    assert s.cassandra.local_dc == "datacenter1"
    assert (s.kafka.replication_factor, s.kafka.min_insync_replicas) == (3, 2)
    assert len(s.kafka.bootstrap.split(",")) == 3
    assert len(s.connect.urls) == 2
    assert s.stack.cassandra_commitlog == "periodic"
    assert s.cassandra.speculative_delay_s == 0.3
    # Beside the single stack: its own state, PostgreSQL and Redis ports; the jars shared.
    single = load(monkeypatch, None)
    assert s.stack.var_dir == single.stack.var_dir / "cluster"
    assert s.stack.lib_dir == single.stack.lib_dir
    assert s.postgres.port != single.postgres.port
    assert s.redis.url != single.redis.url


def test_an_explicit_variable_beats_the_topology(monkeypatch):
    s = load(monkeypatch, "cluster", FEEDLINE_TOPIC_MIN_ISR="1", FEEDLINE_PG_PORT="6543")
    assert s.kafka.min_insync_replicas == 1
    assert s.postgres.port == 6543


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FEEDLINE_TOPOLOGY", "ring"),
        ("FEEDLINE_CASSANDRA_CONSISTENCY", "SOME"),
        ("FEEDLINE_CASSANDRA_COMMITLOG", "never"),
        ("FEEDLINE_CASSANDRA_HOSTS", " , "),
        ("FEEDLINE_CONNECT_URL", ""),
        ("FEEDLINE_KAFKA_BOOTSTRAP", "127.0.0.2:9092,127.0.0.3"),
        ("FEEDLINE_KAFKA_BOOTSTRAP", " , "),
        ("FEEDLINE_TOPIC_MIN_ISR", "2"),  # above the single node's replication factor 1
        ("FEEDLINE_JVM_TIMER_SLACK_US", "-1"),
        ("FEEDLINE_JVM_TIMER_SLACK_US", "300000"),  # 300 ms: a typo for 300 us
        ("FEEDLINE_JVM_TIMER_SLACK_US", "300us"),
    ],
)
def test_a_bad_value_is_one_clear_error(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        settings_mod.load()


def test_a_consistency_level_may_be_given_in_any_case(monkeypatch):
    monkeypatch.setenv("FEEDLINE_CASSANDRA_CONSISTENCY", "local_one")
    assert settings_mod.load().cassandra.consistency == "LOCAL_ONE"


def test_the_stack_has_a_kafka_node_per_bootstrap_address(monkeypatch, tmp_path):
    monkeypatch.setenv("FEEDLINE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("FEEDLINE_KAFKA_BOOTSTRAP", " 127.0.0.2:9092, ,127.0.0.3:9192 ")
    kafka = Stack.of(settings_mod.load()).kafka
    assert [(node.host, node.port) for node in kafka] == [
        ("127.0.0.2", 9092), ("127.0.0.3", 9192),
    ]  # fmt: skip


def test_tokens_are_evenly_spaced_and_the_single_node_keeps_zero():
    assert initial_token(0, 1) == 0
    tokens = [initial_token(i, 3) for i in range(3)]
    assert tokens[0] == 0 and sorted(tokens) == [tokens[2], tokens[0], tokens[1]]
    assert all(-(2**63) <= t < 2**63 for t in tokens)
    assert tokens[1] - tokens[0] == 2**64 // 3


def cluster_stack(monkeypatch, tmp_path) -> Stack:
    s = load(monkeypatch, "cluster", FEEDLINE_VAR_DIR=str(tmp_path))
    return Stack.of(s)


def test_the_cluster_has_a_service_per_node(monkeypatch, tmp_path):
    stack = cluster_stack(monkeypatch, tmp_path)
    names = [svc.name for svc in stack.all()]
    assert names == ["postgres", "redis", "kafka-1", "kafka-2", "kafka-3", "connect-1",
                     "connect-2", "cassandra-1", "cassandra-2", "cassandra-3"]  # fmt: skip
    # Each node on the standard ports of its own address; JMX (127.0.0.1 only) apart.
    c = stack.cassandra
    assert [n.endpoints()[0] for n in c] == [(h, 9042) for h in ("127.0.0.2", "127.0.0.3",
                                                                 "127.0.0.4")]  # fmt: skip
    assert len({n.endpoints()[-1] for n in c}) == 3
    assert [w.endpoints() for w in stack.connect] == [[("127.0.0.2", 8083)], [("127.0.0.3", 8083)]]
    # The single stack's names are unchanged (pid files, logs and data stay where they were).
    single = Stack.of(load(monkeypatch, None, FEEDLINE_VAR_DIR=str(tmp_path)))
    assert [svc.name for svc in single.all()] == ["postgres", "redis", "kafka", "connect",
                                                  "cassandra"]  # fmt: skip


def rendered_kafka(kafka: Kafka) -> str:
    """Render a broker's properties without formatting its storage (marked formatted)."""
    kafka.datadir.mkdir(parents=True, exist_ok=True)
    (kafka.datadir / "meta.properties").write_text("")
    kafka.prepare()
    return (kafka.ctx.lay.conf / f"{kafka.name}.properties").read_text()


def test_every_template_renders_for_a_cluster_node(monkeypatch, tmp_path):
    stack = cluster_stack(monkeypatch, tmp_path)
    lay = stack.postgres.ctx.lay
    lay.make_dirs()
    props = rendered_kafka(stack.kafka[1])
    assert "node.id=2\n" in props
    assert "controller.quorum.voters=1@127.0.0.2:9093,2@127.0.0.3:9093,3@127.0.0.4:9093" in props
    assert "listeners=PLAINTEXT://127.0.0.3:9092," in props
    assert "min.insync.replicas=2\n" in props and "offsets.topic.replication.factor=3\n" in props
    assert "broker.session.timeout.ms=3000\n" in props
    [path] = stack.connect[1].args()
    worker = (lay.conf / "connect-2.properties").read_text()
    assert path.endswith("connect-2.properties")
    assert "listeners=http://127.0.0.3:8083" in worker
    assert "offset.storage.replication.factor=3" in worker
    args = stack.cassandra[2].jvm_args()
    yaml = (lay.conf / "cassandra-3.yaml").read_text()
    assert "listen_address: 127.0.0.4" in yaml and '- seeds: "127.0.0.2:7000"' in yaml
    assert f"initial_token: {initial_token(2, 3)}" in yaml
    assert "commitlog_sync: periodic" in yaml
    assert "-Dcassandra.jmx.local.port=7499" in args
    assert "-Dcassandra.ring_delay_ms=1000" in args


def test_the_single_node_renders_as_before(monkeypatch, tmp_path):
    single = Stack.of(load(monkeypatch, None, FEEDLINE_VAR_DIR=str(tmp_path)))
    single.postgres.ctx.lay.make_dirs()
    props = rendered_kafka(single.kafka[0])
    assert "controller.quorum.bootstrap.servers=127.0.0.1:9093" in props
    assert "offsets.topic.replication.factor=1\n" in props
    args = single.cassandra[0].jvm_args()
    yaml = (single.postgres.ctx.lay.conf / "cassandra.yaml").read_text()
    assert "initial_token: 0\n" in yaml and "commitlog_sync: group" in yaml
    assert "-Dcassandra.ring_delay_ms=1000" not in args
    assert "-Dcassandra.jmx.local.port=7199" in args


def test_a_node_of_one_topology_never_passes_for_the_others(monkeypatch, tmp_path):
    """procs.owned trusts a pid whose argv names the service's marker: a cluster node's argv
    (under var/cluster, on var/lib's shared jars) must not name a single node's marker."""
    single = Stack.of(load(monkeypatch, None, FEEDLINE_VAR_DIR=str(tmp_path)))
    replicated = Stack.of(load(monkeypatch, "cluster", FEEDLINE_VAR_DIR=str(tmp_path)))

    def argv(svc) -> str:
        svc.ctx.lay.make_dirs()
        return " ".join([*svc.jvm_args(), svc.classpath(), *svc.args()])

    for one, many in ((single.kafka, replicated.kafka), (single.connect, replicated.connect),
                      (single.cassandra, replicated.cassandra)):  # fmt: skip
        [alone] = one
        assert str(alone.marker) in argv(alone)
        for node in many:
            assert str(node.marker) in argv(node)
            assert str(alone.marker) not in argv(node)
            assert str(node.marker) not in argv(alone)
    for svc in (single.postgres, single.redis):
        assert all(not str(o.marker).startswith(str(svc.marker)) for o in replicated.all())


def test_every_jvm_gets_the_timer_slack_setting_and_zero_turns_it_off(monkeypatch):
    monkeypatch.setenv("FEEDLINE_JVM_TIMER_SLACK_US", "0")
    assert all(svc.timer_slack_us() == 0 for svc in _jvms(settings_mod.load()))
    monkeypatch.delenv("FEEDLINE_JVM_TIMER_SLACK_US")
    assert {svc.timer_slack_us() for svc in _jvms(settings_mod.load())} == {300}


def _jvms(settings):
    stack = Stack.of(settings)
    return [*stack.cassandra, *stack.kafka, *stack.connect]


def test_a_cassandra_node_starts_without_its_compaction_history(monkeypatch, tmp_path):
    """Cassandra 5.0.9 re-inserts system.compaction_history into itself on every start, one
    commit-log sync per row (Cassandra.prepare): the launcher empties that table's directory
    of the stopped node, and only that one."""
    for stack in (Stack.of(load(monkeypatch, None, FEEDLINE_VAR_DIR=str(tmp_path))),
                  cluster_stack(monkeypatch, tmp_path)):  # fmt: skip
        node = stack.cassandra[-1]
        system = node.datadir / "data" / "system"
        history = system / "compaction_history-b4dbb7b4dc493fb5b3bfce6e434832ca"
        other = system / "sstable_activity_v2-62efe31f3be8310c8d298963439c1288"
        for table in (history, other):
            (table / "snapshots").mkdir(parents=True)
            for name in ("nb-7-big-Data.db", "nb-7-big-TOC.txt", "nb_txn_compaction_x.log"):
                (table / name).write_text("x")
        node.prepare()
        assert [p.name for p in history.iterdir()] == ["snapshots"]
        assert len(list(other.iterdir())) == 4
