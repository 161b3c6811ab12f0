"""Brokers of a replicated cluster die under load (``relayflow dev up --brokers 3``).

A three-node cluster of this module's own (each node broker and KRaft
controller; topics at replication factor 3, ``min.insync.replicas=2``,
producers ``acks=all``) on free ports; Temporal is the session's. While
orders flow in and outcomes flow out, the leader of ``orders.events``
partition 0 is killed with SIGKILL: its partitions move, the flow goes on,
nothing is lost or doubled. Then a second node is killed, leaving one: no
produce is acknowledged any more (too few in-sync replicas, and no controller
majority to change that), so intake and outcomes stop, and the bridge waits:
it commits nothing and dead-letters nothing. One node back, everything flows.
"""

from __future__ import annotations

import asyncio
import os
import signal
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
from relayflow.kafka.reads import committed_to_end
from relayflow.operate.dlq import read_dead_letters
from relayflow.reference.app import APP
from relayflow.reference.events import OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.clients import kafka_clients
from relayflow.testing.stacks import ensure_app_topics
from tests.faults.checks import assert_clean, orders
from tests.faults.rig import Rig, open_rig

pytestmark = [pytest.mark.timeout(300)]

T = TypeVar("T")

STALLED_SECONDS = 8.0
"""How long the test watches a one-node cluster acknowledge nothing and commit nothing."""


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
        devstack.stop_kafka(settings)


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


def _kill(settings: Settings, node_id: int) -> None:
    """SIGKILL one node of the cluster."""
    [node] = [n for n in devstack.kafka_nodes(settings) if n.node_id == node_id]
    pid = recorded_pid(settings, node.service)
    assert pid is not None, f"{node.service} is not running"
    os.kill(pid, signal.SIGKILL)


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
    async with asyncio.timeout(60):
        while True:  # another replica leads, the dead one is out of the in-sync set
            leader, isr = await _partition(cluster, ORDERS_EVENTS, 0)
            if leader not in {victim, -1} and victim not in isr:
                break
            await asyncio.sleep(0.2)
    async with asyncio.timeout(90):
        await load
    assert_clean(await rig.settled(), 70)
    assert bridge.alive

    # 2. A second node dies, one is left: nothing is acknowledged, committed or dead-lettered.
    async with asyncio.timeout(30):
        coordinator = await _ask(cluster, lambda admin: admin.find_coordinator(
            rig.settings.kafka_consumer_group))
    # The group's coordinator survives, so its committed offsets stay readable.
    [second] = {1, 2, 3} - {victim, coordinator}
    stepping = asyncio.Event()
    load = asyncio.create_task(_produce_in_steps(rig, batch[70:], stepping))
    await stepping.wait()
    _kill(cluster, second)
    # Nothing observable can happen now: watch it not happen for a while.
    async with asyncio.timeout(30):
        committed = await _committed(rig.settings)
    done, _ = await asyncio.wait({load}, timeout=STALLED_SECONDS)
    assert not done, "a one-node cluster acknowledged every order (min.insync.replicas=2)"
    async with asyncio.timeout(30):
        assert await _committed(rig.settings) == committed
    assert bridge.alive

    # 3. One node back (the one that missed the most): the orders held by the producer
    # go in once, everything settles.
    await asyncio.to_thread(devstack.start_kafka, cluster, [victim])
    async with asyncio.timeout(120):
        await load
    assert_clean(await rig.settled(), 100)
    assert await _our_dead_letters(rig) == []
    assert bridge.alive
