"""Prove children can be added and removed at runtime, as partition consumers will be."""

import time

import pytest

from feedline.actors.kafka_consumer import PartitionChildren, partition_child_id
from feedline.supervisors import (
    ChildSpec,
    ChildStartError,
    StartChild,
    SupervisedActor,
    TerminateChild,
)
from tests.unit.supervisors.fakes import info_of, ref_of, replaced, start_root, wait_until, worker


def test_started_child_runs_last_in_order_and_is_supervised(journal):
    root = start_root([worker(journal, "a")])

    ref = root.ask(StartChild(worker(journal, "p-0")), timeout=2)

    assert ref.ask("ping") == "p-0"
    assert ref_of(root, "p-0") == ref
    ref.tell("crash")
    assert replaced(root, "p-0", ref).ask("ping") == "p-0"
    root.stop(block=True, timeout=5)
    assert journal.events("stop") == ["p-0", "a"]


def test_duplicate_id_is_refused(journal):
    root = start_root([worker(journal, "a")])

    with pytest.raises(ValueError, match="duplicate"):
        root.ask(StartChild(worker(journal, "a")), timeout=2)


def test_child_that_cannot_start_is_refused_and_not_kept(journal):
    root = start_root([])

    with pytest.raises(ChildStartError):
        root.ask(StartChild(worker(journal, "p", kwargs={"start_failures": [True]})), timeout=2)

    assert info_of(root, "p") is None


def test_terminated_child_is_stopped_gracefully_and_forgotten(journal):
    root = start_root([worker(journal, "a")])
    ref = root.ask(StartChild(worker(journal, "p-1")), timeout=2)
    for _ in range(3):
        ref.tell("queued work")  # processed before the stop, as on a partition revoke

    assert root.ask(TerminateChild("p-1"), timeout=2) is True

    assert not ref.is_alive()
    assert journal.events("stop") == ["p-1"]
    assert ref_of(root, "p-1") is None and info_of(root, "p-1") is None
    assert root.ask(TerminateChild("p-1"), timeout=2) is False


def test_proxy_methods_work_too(journal):
    root = start_root([])
    supervisor = root.proxy()

    ref = supervisor.start_child(worker(journal, "p-2")).get(timeout=2)

    assert supervisor.which_child("p-2").get(timeout=2) == ref
    assert supervisor.terminate_child("p-2").get(timeout=2) is True


class SlowFirstStart(SupervisedActor):
    """Start slower than its start timeout the first time (a loaded box), then at once."""

    def __init__(self, journal, name, starts: list[float], *, link=None):
        super().__init__(link=link)
        self.journal, self.name, self.starts = journal, name, starts

    def on_start(self):
        time.sleep(self.starts.pop(0) if self.starts else 0.0)
        self.journal.add("start", self.name)

    def on_receive(self, message):
        return self.name


def _partition_owner_specs(journal, how: str):
    """Return a PartitionChildren spec factory whose first owner cannot start in time."""
    if how == "raises":
        failures = [True]
        return lambda topic, partition, _consumer: worker(
            journal, partition_child_id(topic, partition), kwargs={"start_failures": failures}
        )
    starts = [1.0]
    return lambda topic, partition, _consumer: ChildSpec(
        id=partition_child_id(topic, partition),
        actor=SlowFirstStart,
        kwargs={"journal": journal, "name": partition_child_id(topic, partition), "starts": starts},
        start_timeout=0.2,
    )


@pytest.mark.parametrize("how", ["raises", "times_out"])
def test_a_partition_owner_that_cannot_start_is_retried_alone(journal, escalations, how):
    root = start_root([worker(journal, "kafka-consumer")], on_escalate=escalations.append)
    consumer = ref_of(root, "kafka-consumer")
    owners = PartitionChildren(root, _partition_owner_specs(journal, how))

    owners.start("feedline.public.shards", 3, consumer)  # a tell, as from on_assign

    child_id = partition_child_id("feedline.public.shards", 3)
    owner = wait_until(lambda: ref_of(root, child_id), timeout=5)
    assert owner.ask("ping") == child_id
    assert escalations == [], "one owner's start failure took the consumers supervisor down"
    assert root.is_alive() and consumer.is_alive() and ref_of(root, "kafka-consumer") == consumer
    assert "kafka-consumer" not in journal.events("stop")
    assert info_of(root, child_id).restarts == 1
