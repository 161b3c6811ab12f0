"""Brokers of a replicated cluster die under load (``relayflow dev up --brokers 3``).

A three-node cluster of this module's own (each node broker and KRaft
controller; topics at replication factor 3, ``min.insync.replicas=2``,
producers ``acks=all``) on free ports; Temporal is the session's.

1. While orders flow in and outcomes flow out, the leader of
   ``orders.events`` partition 0 is killed with SIGKILL: its partitions move,
   the flow goes on, nothing is lost or doubled. The node comes back.
2. What ``acks=all`` with ``min.insync.replicas=2`` buys, with the controller
   quorum up throughout: both followers of a partition are frozen (SIGSTOP),
   orders are produced to it, and its leader, the only replica holding them,
   acknowledges none (with ``acks=1`` it would acknowledge them all). The
   leader is killed, the followers thawed: one of them leads, the producer
   sends the orders again, and every one goes in once. With ``acks=1`` the
   orders acknowledged by the dead leader alone would be lost.
3. A second node is killed, leaving one: no controller majority, so nothing
   is acknowledged whatever the producers' ``acks`` (a leader may not even
   notice its followers are gone), intake and outcomes stop, and the bridge
   waits: it commits nothing and dead-letters nothing. One node back,
   everything flows.

At the end each order is in ``orders.events`` exactly once (no duplicate
from a producer's retries) and had its effect once (``relayflow verify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.devstack.process import recorded_pid
from relayflow.kafka.reads import committed_to_end, read_records
from relayflow.operate.dlq import read_dead_letters
from relayflow.reference.app import APP
from relayflow.reference.events import OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.clients import kafka_clients
from relayflow.testing.stacks import ensure_app_topics
from tests.faults.checks import assert_clean, orders
from tests.faults.rig import Rig, open_rig

pytestmark = [pytest.mark.timeout(420)]

T = TypeVar("T")

STALLED_SECONDS = 8.0
"""How long the test watches a one-node cluster acknowledge nothing and commit nothing."""

FROZEN_SECONDS = 3.0
"""How long the test watches a leader whose followers are frozen acknowledge nothing
(well under ``replica.lag.time.max.ms``: the followers stay in sync meanwhile)."""


@pytest.fixture
def cluster(stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Three KRaft nodes on free ports in a folder of their own; the session's Temporal."""
    ports = [free_port() for _ in range(6)]
    settings = stack.model_copy(update={
        "data_dir": tmp_path / "cluster", "kafka_dev_brokers": 3,
        "kafka_port": ports[0], "kafka_controller_port": ports[1], "kafka_advertised_port": None,
        "kafka_dev_node_ports": f"{ports[2]}/{ports[3]},{ports[4]}/{ports[5]}"})
    settings = settings.model_copy(
        update={"kafka_bootstrap_servers": devstack.bootstrap_servers(settings)})
    try:
        devstack.start_kafka(settings)
        ensure_app_topics(settings, APP.all_topics(), timeout=60)
        yield settings
    finally:
        devstack.stop_kafka(settings, grace=0)  # its data goes with tmp_path: no clean shutdown


@pytest.fixture
async def rig(cluster: Settings, tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_rig(cluster, tmp_path) as made:
        yield made


async def _ask(settings: Settings, question: Callable[[AIOKafkaAdminClient], Awaitable[T]],
               ) -> T:
    """``question``'s answer from any live node (the client may pick a dead one first)."""
    while True:
        try:
            async with kafka_clients(settings).started_admin(request_timeout_ms=5000) as admin:
                return await question(admin)
        except KafkaError:
            await asyncio.sleep(0.2)


async def _partition(settings: Settings, topic: str, partition: int) -> tuple[int, list[int]]:
    """Leader and in-sync replicas of one partition, as the cluster reports them."""
    [described] = await _ask(settings, lambda admin: admin.describe_topics([topic]))
    [found] = [p for p in described["partitions"] if p["partition"] == partition]
    return found["leader"], list(found["isr"])


async def _replication(settings: Settings, topic: str) -> tuple[set[int], str]:
    """Replica counts of the topic's partitions, and its ``min.insync.replicas``."""
    [described] = await _ask(settings, lambda admin: admin.describe_topics([topic]))
    wanted = ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})
    [response] = await _ask(settings, lambda admin: admin.describe_configs([wanted]))
    [(_, _, _, _, entries)] = response.resources
    [(_, min_insync, *_)] = entries
    return {len(p["replicas"]) for p in described["partitions"]}, min_insync


def _kill(settings: Settings, node_id: int, signum: int = signal.SIGKILL) -> None:
    """SIGKILL (or ``signum``) one node of the cluster."""
    [node] = [n for n in devstack.kafka_nodes(settings) if n.node_id == node_id]
    pid = recorded_pid(settings, node.service)
    assert pid is not None, f"{node.service} is not running"
    os.kill(pid, signum)


@contextlib.contextmanager
def _frozen(settings: Settings, node_ids: set[int]) -> Iterator[None]:
    """The nodes stopped (SIGSTOP) while the block runs, continued afterwards whatever happens."""
    try:
        for node_id in node_ids:
            _kill(settings, node_id, signal.SIGSTOP)
        yield
    finally:
        for node_id in node_ids:
            _kill(settings, node_id, signal.SIGCONT)


async def _in_sync(settings: Settings, topic: str, partition: int) -> tuple[int, list[int]]:
    """Leader and replicas of the partition once all three are in sync (bounded)."""
    async with asyncio.timeout(60):
        while True:
            leader, isr = await _partition(settings, topic, partition)
            if leader != -1 and len(isr) == 3:  # the replication factor
                return leader, isr
            await asyncio.sleep(0.2)


async def _moved(settings: Settings, topic: str, partition: int, dead: int) -> None:
    """Wait (bounded) until another replica leads and the dead one is out of the in-sync set."""
    async with asyncio.timeout(60):
        while True:
            leader, isr = await _partition(settings, topic, partition)
            if leader not in {dead, -1} and dead not in isr:
                return
            await asyncio.sleep(0.2)


async def _produce_in_steps(rig: Rig, batch: list[OrderPlaced], first_acked: asyncio.Event,
                            ) -> None:
    """Orders a few at a time, each step acknowledged before the next: a steady load."""
    for start in range(0, len(batch), 5):
        await rig.produce(ORDERS_EVENTS, batch[start:start + 5])
        first_acked.set()


async def _committed(settings: Settings) -> dict[TopicPartition, int]:
    group = settings.kafka_consumer_group
    found = await _ask(settings, lambda admin: admin.list_consumer_group_offsets(group))
    return {tp: meta.offset for tp, meta in found.items()}


async def _our_dead_letters(rig: Rig) -> list[str]:
    return [d.coordinates for d in await read_dead_letters(rig.settings)
            if (d.key or b"").decode(errors="replace").startswith(rig.prefix)]


async def _copies_of_each_order(rig: Rig) -> Counter[str]:
    """How many records of ``orders.events`` carry each of the test's event ids."""
    records = await read_records(kafka_clients(rig.settings), [ORDERS_EVENTS])
    return Counter(r.header("event-id") for r in records
                   if (r.key or b"").decode(errors="replace").startswith(rig.prefix))


async def _a_leader_alone_acknowledges_nothing(cluster: Settings, rig: Rig,
                                               batch: list[OrderPlaced]) -> int:
    """Stage 2: ``batch`` produced while only the leader can take it, then the leader dies.

    A leader alone acknowledges nothing (acks=all, min.insync.replicas=2), so its
    death loses nothing it acknowledged. The controller quorum stays up: this is
    about the producers' acks, not about a cluster that can decide nothing.

    Returns:
        The dead leader's node id.
    """
    leader, isr = await _in_sync(cluster, ORDERS_EVENTS, 0)
    with _frozen(cluster, set(isr) - {leader}):
        load = asyncio.create_task(rig.produce(ORDERS_EVENTS, batch, partition=0))
        done, _ = await asyncio.wait({load}, timeout=FROZEN_SECONDS)
        assert not done, "the leader acknowledged orders no follower had (acks=1?)"
        _kill(cluster, leader)
    await _moved(cluster, ORDERS_EVENTS, 0, leader)
    async with asyncio.timeout(90):  # sent again, to the new leader
        await load
    return leader


async def _one_node_left_stalls(cluster: Settings, rig: Rig, batch: list[OrderPlaced],
                                alive: set[int]) -> asyncio.Task[None]:
    """Stage 3: a second node dies, one is left: nothing acknowledged, committed or dead-lettered.

    Returns:
        The load of ``batch``, still waiting for acknowledgements.
    """
    async with asyncio.timeout(30):
        coordinator = await _ask(cluster, lambda admin: admin.find_coordinator(
            rig.settings.kafka_consumer_group))
    # The group's coordinator survives, so its committed offsets stay readable.
    [second] = alive - {coordinator}
    stepping = asyncio.Event()
    load = asyncio.create_task(_produce_in_steps(rig, batch, stepping))
    await stepping.wait()
    _kill(cluster, second)
    # Nothing observable can happen now: watch it not happen for a while.
    async with asyncio.timeout(30):
        committed = await _committed(rig.settings)
    done, _ = await asyncio.wait({load}, timeout=STALLED_SECONDS)
    assert not done, "a one-node cluster acknowledged every order"
    async with asyncio.timeout(30):
        assert await _committed(rig.settings) == committed
    return load


async def test_leader_killed_under_load_then_a_second_broker(cluster: Settings, rig: Rig) -> None:
    rig.worker()
    bridge = rig.bridge()
    await bridge.logged("bridge consuming")
    batch = orders(rig, 100)
    await rig.produce(ORDERS_EVENTS, batch[:30])
    async with asyncio.timeout(90):  # the bridge started them: outcomes are on their way
        await committed_to_end(kafka_clients(rig.settings), rig.settings.kafka_consumer_group,
                               [TopicPartition(ORDERS_EVENTS, p) for p in range(6)])

    # The guarantee's assumptions: three replicas, two of them acknowledge each write.
    assert await _replication(cluster, ORDERS_EVENTS) == ({3}, "2")

    # 1. The leader of a busy partition dies mid-load: the flow goes on.
    victim, isr = await _partition(cluster, ORDERS_EVENTS, 0)
    assert len(isr) == 3  # every replica in sync before the fault
    stepping = asyncio.Event()
    load = asyncio.create_task(_produce_in_steps(rig, batch[30:70], stepping))
    await stepping.wait()
    _kill(cluster, victim)
    await _moved(cluster, ORDERS_EVENTS, 0, victim)
    async with asyncio.timeout(90):
        await load
    assert_clean(await rig.settled(), 70)
    assert bridge.alive
    await asyncio.to_thread(devstack.start_kafka, cluster, [victim])

    # 2. Its followers frozen, a leader acknowledges nothing, so its death loses nothing.
    leader = await _a_leader_alone_acknowledges_nothing(cluster, rig, batch[70:80])
    assert_clean(await rig.settled(), 80)
    assert bridge.alive
    # 3. A second node dies, one is left: the bridge waits, commits and dead-letters nothing.
    load = await _one_node_left_stalls(cluster, rig, batch[80:], alive={1, 2, 3} - {leader})
    assert bridge.alive

    # 4. One node back (the one that missed the most): the orders held by the producer
    # go in once, everything settles.
    await asyncio.to_thread(devstack.start_kafka, cluster, [leader])
    async with asyncio.timeout(120):
        await load
    assert_clean(await rig.settled(), 100)
    assert await _our_dead_letters(rig) == []
    assert bridge.alive
    # Each order once in the input topic: no producer retry (stages 1, 2 and 4) doubled one.
    copies = await _copies_of_each_order(rig)
    assert len(copies) == 100
    assert set(copies.values()) == {1}, copies.most_common(3)
