"""Confluent wire format end to end: a schema registry configured, real Kafka and Temporal.

Other teams' producers often use Confluent serializers: byte 0, a registry id,
then the Avro body. With ``RELAYFLOW_SCHEMA_REGISTRY_URL`` set, the bridge
decodes those records with the schema the registry holds for the id, and the
worker frames outcomes the same way. A registry outage delays records; it
never dead-letters them.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from aiokafka.structs import ConsumerRecord

from relayflow.config.settings import Settings
from relayflow.kafka.schema_registry import HttpSchemaRegistry
from relayflow.reference.app import APP
from relayflow.reference.events import SCHEMA_FOLDER, OrderCompleted, OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS, ORDERS_OUTCOMES
from schemas.codec import AvroCodec
from schemas.formats import FormatCodec
from schemas.framing import to_record
from schemas.headers import DLQ_REASON
from schemas.topics import dlq_topic
from tests.helpers.registry import RegistryServer, registry_server
from tests.helpers.support import KafkaProbe, kafka_probe, order_placed
from tests.integration.running import relayflow_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

Predicate = Callable[[ConsumerRecord[bytes, bytes]], bool]


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    with registry_server() as server:
        yield server


@pytest.fixture(scope="module")
async def system(stack: Settings, registry: RegistryServer) -> AsyncIterator[Settings]:
    """Bridge and worker configured with the registry."""
    async with relayflow_running(stack, schema_registry_url=registry.url) as settings:
        yield settings


@pytest.fixture
async def probe(system: Settings) -> AsyncIterator[KafkaProbe]:
    async with kafka_probe(system, [ORDERS_OUTCOMES, dlq_topic(ORDERS_EVENTS)]) as p:
        yield p


def _producer_codec(registry: RegistryServer) -> FormatCodec:
    # Another team's producer: its own codec and cache, the same registry.
    return APP.codec(HttpSchemaRegistry(registry.url))


def _on(topic: str, key: str) -> Predicate:
    return lambda r: r.topic == topic and r.key == key.encode()


async def _until(condition: Callable[[], bool], seconds: float = 60) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - the registry's counters live in a thread
            await asyncio.sleep(0.05)


async def test_registry_outage_delays_a_confluent_record_and_loses_nothing(
        probe: KafkaProbe, registry: RegistryServer) -> None:
    # First in the module: the bridge has never seen OrderPlaced's registry id.
    order = order_placed()
    record = to_record(order, _producer_codec(registry))
    assert record.value[0] == 0
    lookups, registrations = registry.requests["GET by-id"], registry.requests["POST register"]
    registry.failing = {"GET", "POST"}
    try:
        await probe.send_record(ORDERS_EVENTS, record)
        # The bridge cannot read the record: it retries, nothing is dead-lettered.
        await _until(lambda: registry.requests["GET by-id"] >= lookups + 3)
        registry.failing = {"POST"}
        # The saga ran; the worker cannot register OrderCompleted: Temporal retries it.
        await _until(lambda: registry.requests["POST register"] >= registrations + 2)
    finally:
        registry.failing = set()
    [outcome] = await probe.wait_for(_on(ORDERS_OUTCOMES, order.order_id))
    assert outcome.value[0] == 0  # the worker framed it through the registry too
    event = _producer_codec(registry).decode(outcome.value)
    assert isinstance(event, OrderCompleted)
    assert event.causation_id == str(order.event_id)
    assert not [r for r in probe.seen if _on(dlq_topic(ORDERS_EVENTS), order.order_id)(r)]
    assert OrderCompleted.avro_name in registry.subjects()  # record-name subjects


async def test_an_id_the_registry_does_not_know_is_dead_lettered(
        probe: KafkaProbe, registry: RegistryServer) -> None:
    order = order_placed()
    body = _producer_codec(registry).encode(order)[5:]
    await probe.send(ORDERS_EVENTS, b"\x00" + struct.pack(">I", 90_000) + body,
                     order.order_id.encode())
    [dead] = await probe.wait_for(_on(dlq_topic(ORDERS_EVENTS), order.order_id))
    assert dict(dead.headers)[DLQ_REASON] == b"unknown-schema"


async def test_single_object_records_still_flow_with_a_registry_configured(
        probe: KafkaProbe) -> None:
    order = order_placed()
    record = to_record(order, AvroCodec([OrderPlaced], SCHEMA_FOLDER))
    assert record.value[:2] == b"\xc3\x01"
    await probe.send_record(ORDERS_EVENTS, record)
    [outcome] = await probe.wait_for(_on(ORDERS_OUTCOMES, order.order_id))
    assert outcome.value[0] == 0
