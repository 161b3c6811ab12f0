"""Records built to stall a partition or blow up the bridge, through a real bridge process.

The attacks, each on partition 0 of ``orders.events``, each followed on that
partition by a valid ``OrderPlaced`` of another key:

* a record whose dead-letter copy the DLQ topic refuses (its
  ``max.message.bytes`` lowered to 32 KiB for the test): before, the size
  error was retried as an outage and the partition never moved;
* a compression bomb: a gzip batch of a few tens of KiB that inflates to
  ``BOMB_BYTES``, far past ``max_payload_bytes``;
* a header bomb: a gzip batch whose one record carries ``HEADER_COUNT``
  headers (about 1 MiB of names and values).

Each must land on the DLQ with its reason and a bounded copy (``dlq-truncated``
and the SHA-256 of the whole value), the valid orders behind them must start
their workflows, and the bridge's peak RSS (``VmHWM``) must stay within
``RSS_BOUND`` of its resident size (``VmRSS``) before the attacks. The numbers measured are
logged (a warning) and written down in docs/concepts/dead-letters.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from relayflow.config.settings import Settings
from relayflow.kafka.reads import StoredRecord
from relayflow.operate.dlq import read_dead_letters
from relayflow.reference.app import ROUTES
from relayflow.reference.events import OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.runtime.clients import kafka_clients
from schemas.framing import to_record
from schemas.headers import DLQ_TRUNCATED, DLQ_VALUE_BYTES, DLQ_VALUE_SHA256
from schemas.topics import dlq_topic
from tests.faults.rig import CODEC, Rig, Service, open_rig
from tests.helpers.support import order_placed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DLQ_MAX_MESSAGE_BYTES = 32 * 1024
BOMB_BYTES = 64 * MIB
"""What the compression bomb inflates to: 128 times the bridge's payload limit."""
HEADER_COUNT = 60_000
RSS_BOUND = 3 * BOMB_BYTES + 64 * MIB
"""Peak RSS growth allowed: aiokafka inflates a batch whole (the value, and one copy of it
while slicing the record out), plus the digest's pass over it and the header bomb's
objects; anything proportional to more copies, or retried, blows it."""


def _memory(service: Service) -> dict[str, int]:
    """VmHWM (peak) and VmRSS of the service's process, in bytes."""
    assert service.proc is not None
    status = Path(f"/proc/{service.proc.pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) * 1024 for name in ("VmHWM", "VmRSS")}


@pytest.fixture
async def rig(stack: Settings, tmp_path: Path) -> AsyncIterator[Rig]:
    """A fault rig whose ``orders.events.dlq`` refuses records over 32 KiB (restored after)."""
    name = dlq_topic(ORDERS_EVENTS)
    async with kafka_clients(stack).started_admin() as admin:
        [described] = await admin.describe_configs([ConfigResource(
            ConfigResourceType.TOPIC, name, {"max.message.bytes": None})])
        [(_, _, _, _, entries)] = described.resources
        [(_, before, *_)] = entries
        await admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, name, {"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)})])
    try:
        async with open_rig(stack, tmp_path) as made:
            yield made
    finally:
        async with kafka_clients(stack).started_admin() as admin:
            await admin.alter_configs([ConfigResource(
                ConfigResourceType.TOPIC, name, {"max.message.bytes": before})])


async def _send(producer: AIOKafkaProducer, value: bytes, key: bytes,
                headers: list[tuple[str, bytes]]) -> int:
    sent = await producer.send_and_wait(ORDERS_EVENTS, value, key=key, partition=0,
                                        headers=headers)
    return int(sent.offset)


Attacks = dict[int, tuple[str, bytes, str]]
"""Source offset of each attack -> (its dlq-reason, its whole value, what its copy cuts)."""


async def _attack(rig: Rig) -> tuple[Attacks, list[OrderPlaced]]:
    """Send the three attacks, each followed by a valid order of a new key on partition 0."""
    attacks: Attacks = {}
    orders: list[OrderPlaced] = []

    def key(n: int) -> bytes:  # new on a shared stack: an earlier run's bomb parked its key
        return f"{rig.prefix}-bomb-{n}".encode()

    async def order_behind() -> None:
        event = order_placed(rig.order_id(len(orders)))
        record = to_record(event, CODEC)
        await _send(rig.producer, record.value, record.key, list(record.headers))
        orders.append(event)

    # The attacker's producer: its own client-side limit raised, gzip batches.
    attacker = kafka_clients(rig.settings).producer(
        compression_type="gzip", max_request_size=BOMB_BYTES + MIB, linger_ms=0)
    await attacker.start()
    try:
        # (a) Not Avro, 300 KiB: under every input limit, too large for the DLQ topic.
        junk = os.urandom(300 * 1024)
        attacks[await _send(attacker, junk, key(1), [])] = ("unknown-framing", junk, "value")
        await order_behind()
        # (b) A compression bomb: tens of KiB on the wire, BOMB_BYTES inflated.
        bomb = b"\xc3\x01" + bytes(BOMB_BYTES - 2)
        attacks[await _send(attacker, bomb, key(2), [])] = ("oversize", bomb, "value")
        await order_behind()
        # (c) A header bomb: HEADER_COUNT headers, about 1 MiB of names and values.
        many = [(f"h{i:06d}", b"v" * 10) for i in range(HEADER_COUNT)]
        valid = to_record(order_placed(rig.order_id(100)), CODEC)
        attacks[await _send(attacker, valid.value, valid.key, many)] = (
            "bad-header", valid.value, "headers")
        await order_behind()
    finally:
        await attacker.stop()
    return attacks, orders


async def _dead_letters(rig: Rig, attacks: Attacks) -> dict[int, StoredRecord]:
    """The attacks' dead letters by source offset, once all arrived (bounded wait)."""
    letters: dict[int, StoredRecord] = {}
    for _ in range(120):
        letters = {d.source[2]: d for d in await read_dead_letters(rig.settings, [ORDERS_EVENTS])
                   if d.source[:2] == (ORDERS_EVENTS, 0) and d.source[2] in attacks}
        if len(letters) == len(attacks):
            break
        await asyncio.sleep(1)
    return letters


async def _status(temporal: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    """The workflow's status once it exists (bounded wait); None if it never did."""
    handle = temporal.get_workflow_handle(workflow_id)
    for _ in range(60):
        with contextlib.suppress(RPCError):  # not started yet
            return (await handle.describe()).status
        await asyncio.sleep(1)
    return None


async def test_bombs_are_dead_lettered_bounded_and_the_partition_moves_on(rig: Rig) -> None:
    bridge = rig.bridge()
    await bridge.logged("bridge consuming", within=120)
    before = _memory(bridge)

    attacks, orders = await _attack(rig)

    # Each attack on the DLQ with its reason, as a bounded copy that identifies it.
    letters = await _dead_letters(rig, attacks)
    assert sorted(letters) == sorted(attacks), f"dead-lettered: {sorted(letters)}"
    for offset, (reason, value, cut) in attacks.items():
        letter = letters[offset]
        assert letter.reason == reason, (offset, letter.reason, letter.error)
        assert cut in letter.header(DLQ_TRUNCATED).split(",")
        assert letter.header(DLQ_VALUE_BYTES) == str(len(value))
        assert letter.header(DLQ_VALUE_SHA256) == hashlib.sha256(value).hexdigest()
        copied = len(letter.value or b"") + sum(len(n) + len(v) for n, v in letter.headers)
        assert copied < DLQ_MAX_MESSAGE_BYTES

    # The valid orders behind the attacks, on the same partition, started their workflows.
    temporal = await connect_temporal(rig.settings)
    route = ROUTES.lookup(ORDERS_EVENTS, OrderPlaced.avro_name)
    assert route is not None
    for event in orders:
        workflow_id = route.id_for(event)
        assert await _status(temporal, workflow_id) is WorkflowExecutionStatus.RUNNING
        await temporal.get_workflow_handle(workflow_id).terminate("security test done")

    after = _memory(bridge)
    # From the steady state before the attacks to the peak since: start-up's own
    # peak (importing everything) would otherwise hide part of the growth.
    grown = after["VmHWM"] - before["VmRSS"]
    log.warning("bridge memory before: %s, after: %s; peak %.0f MiB over the steady state "
                "(bound %.0f MiB) for a %d MiB bomb", before, after, grown / MIB,
                RSS_BOUND / MIB, BOMB_BYTES // MIB)
    assert grown < RSS_BOUND
    assert bridge.alive
