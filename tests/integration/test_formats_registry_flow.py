"""Protobuf and JSON Schema in the Confluent wire format, end to end through a real registry.

The parcels application's bridge and worker run with Apicurio Registry
configured and the topic-record subject strategy. Another team's producer
frames a Protobuf ``ParcelShipped`` (schema id and message-index array) and a
JSON ``ParcelDelivered`` through the same registry; the worker writes the
Protobuf ``ParcelClosed`` outcome framed the same way, registered under
``<topic>-<full name>``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from examples.parcels.app import APP, PARCELS_EVENTS
from examples.parcels.events import ParcelClosed, ParcelDelivered, ParcelShipped
from examples.parcels.workflows import PARCELS_OUTCOMES
from relayflow.config.settings import Settings
from relayflow.kafka.schema_registry import HttpSchemaRegistry
from relayflow.testing.system import running_system
from schemas.formats import FormatCodec, read_message_indexes
from schemas.framing import to_record
from schemas.topics import dlq_topic
from tests.helpers.registry import ApicurioRegistry
from tests.helpers.support import KafkaProbe, kafka_probe

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

STRATEGY = "topic-record"


@pytest.fixture
async def system(stack: Settings, apicurio: ApicurioRegistry) -> AsyncIterator[Settings]:
    """The parcels bridge and worker, configured with the registry."""
    async with running_system(stack, APP, schema_registry_url=apicurio.url,
                              schema_registry_subject_strategy=STRATEGY) as settings:
        yield settings


@pytest.fixture
async def probe(system: Settings) -> AsyncIterator[KafkaProbe]:
    async with kafka_probe(system, [PARCELS_OUTCOMES, dlq_topic(PARCELS_EVENTS)]) as p:
        yield p


def producer_codec(registry: ApicurioRegistry) -> FormatCodec:
    """Another team's producer: its own codec and cache, the same registry."""
    return APP.codec(HttpSchemaRegistry(registry.url), STRATEGY)


async def test_confluent_framed_protobuf_and_json_flow_through_a_real_registry(
        probe: KafkaProbe, apicurio: ApicurioRegistry) -> None:
    parcel_id = f"P-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    producer = producer_codec(apicurio)
    shipped = to_record(ParcelShipped(event_id=uuid.uuid4(), occurred_at=now,
                                      parcel_id=parcel_id, carrier="ups", weight_grams=900),
                        producer)
    assert (shipped.value[0], shipped.value[5]) == (0, 0)  # magic byte; message index [0]
    await probe.send_record(PARCELS_EVENTS, shipped)
    delivery = ParcelDelivered(event_id=uuid.uuid4(), occurred_at=now, parcel_id=parcel_id,
                               signed_by="bo")
    await probe.send_record(PARCELS_EVENTS, to_record(delivery, producer))

    [outcome] = await probe.wait_for(
        lambda r: r.topic == PARCELS_OUTCOMES and r.key == parcel_id.encode())

    assert outcome.value[0] == 0  # the worker framed it through the registry
    assert read_message_indexes(outcome.value, 5)[0] == [1]  # ParcelClosed: 2nd message
    closed = producer_codec(apicurio).decode(outcome.value)  # no header: the registry says
    assert isinstance(closed, ParcelClosed)
    assert (closed.status, closed.signed_by) == ("DELIVERED", "bo")
    assert closed.causation_id == str(delivery.event_id)
    assert not [r for r in probe.seen if r.topic == dlq_topic(PARCELS_EVENTS)
                and r.key == parcel_id.encode()]
    subjects = apicurio.subjects()
    assert f"{PARCELS_OUTCOMES}-{ParcelClosed.avro_name}" in subjects
    assert f"{PARCELS_EVENTS}-{ParcelDelivered.avro_name}" in subjects
