"""Confluent wire format end to end through a real registry (Apicurio), Kafka and Temporal.

``test_registry_flow`` stages registry outages with the registry written for
the tests; here the registry is a real one: the bridge fetches the writer
schema of another team's record by its id, the worker registers the outcome's
schema under its record-name subject and frames it with the id it got.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import pytest

from relayflow.config.settings import Settings
from relayflow.kafka.schema_registry import HttpSchemaRegistry
from relayflow.reference.app import APP
from relayflow.reference.events import OrderCompleted, OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS, ORDERS_OUTCOMES
from schemas.framing import to_record
from schemas.headers import DLQ_REASON
from schemas.topics import dlq_topic
from tests.helpers.registry import ApicurioRegistry
from tests.helpers.support import KafkaProbe, kafka_probe, order_placed
from tests.integration.running import relayflow_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
async def system(stack: Settings, apicurio_session: ApicurioRegistry) -> AsyncIterator[Settings]:
    """Bridge and worker configured with the real registry."""
    async with relayflow_running(stack, schema_registry_url=apicurio_session.url) as settings:
        yield settings


@pytest.fixture
async def probe(system: Settings) -> AsyncIterator[KafkaProbe]:
    async with kafka_probe(system, [ORDERS_OUTCOMES, dlq_topic(ORDERS_EVENTS)]) as p:
        yield p


async def test_a_confluent_record_flows_and_its_outcome_is_framed_through_the_registry(
        probe: KafkaProbe, apicurio_session: ApicurioRegistry) -> None:
    # Another team's producer: its own codec and cache, the same registry.
    producer = APP.codec(HttpSchemaRegistry(apicurio_session.url))
    order = order_placed()
    record = to_record(order, producer)
    assert record.value[0] == 0
    await probe.send_record(ORDERS_EVENTS, record)
    [outcome] = await probe.wait_for(
        lambda r: r.topic == ORDERS_OUTCOMES and r.key == order.order_id.encode())
    assert outcome.value[0] == 0
    outcome_id = struct.unpack(">I", outcome.value[1:5])[0]
    subjects = apicurio_session.subjects()
    assert outcome_id in subjects[OrderCompleted.avro_name]  # registered by the worker
    assert struct.unpack(">I", record.value[1:5])[0] in subjects[OrderPlaced.avro_name]
    event = APP.codec(HttpSchemaRegistry(apicurio_session.url)).decode(outcome.value)
    assert isinstance(event, OrderCompleted)
    assert event.causation_id == str(order.event_id)


async def test_an_id_the_real_registry_does_not_know_is_dead_lettered(
        probe: KafkaProbe, apicurio_session: ApicurioRegistry) -> None:
    order = order_placed()
    body = APP.codec(HttpSchemaRegistry(apicurio_session.url)).encode(order)[5:]
    await probe.send(ORDERS_EVENTS, b"\x00" + struct.pack(">I", 90_000) + body,
                     order.order_id.encode())
    [dead] = await probe.wait_for(
        lambda r: r.topic == dlq_topic(ORDERS_EVENTS) and r.key == order.order_id.encode())
    assert dict(dead.headers)[DLQ_REASON] == b"unknown-schema"
