"""Protobuf and JSON Schema events end to end: the parcels example on a real Kafka + Temporal.

A Protobuf ``ParcelShipped`` starts the workflow through the real bridge, a
JSON ``ParcelDelivered`` signals it, and the worker publishes a Protobuf
``ParcelClosed``; bad bodies of each format are dead-lettered with their reason.
The operator tools (``relayflow tail`` / ``dlq show`` go through ``shown``)
decode every format.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from examples.parcels.app import APP, PARCELS_EVENTS
from examples.parcels.events import ParcelClosed, ParcelDelivered, ParcelShipped
from examples.parcels.workflows import PARCELS_OUTCOMES
from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.operate.records import shown
from relayflow.testing import AppKafka
from schemas.formats import PROTOBUF_CONTENT_TYPE
from schemas.headers import CONTENT_TYPE, CORRELATION_ID, EVENT_TYPE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


def shipped(parcel_id: str) -> ParcelShipped:
    return ParcelShipped(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                         parcel_id=parcel_id, carrier="dhl", weight_grams=1200)


async def test_a_protobuf_start_and_a_json_signal_close_the_parcel(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    parcel_id = f"P-{uuid.uuid4().hex[:8]}"
    await relayflow_kafka.send(shipped(parcel_id), correlation_id="route-7")
    delivery = ParcelDelivered(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                               parcel_id=parcel_id, signed_by="ann")
    await relayflow_kafka.send(delivery)

    closed = await relayflow_kafka.wait_for(ParcelClosed, key=parcel_id)

    assert (closed.status, closed.signed_by) == ("DELIVERED", "ann")
    assert (closed.correlation_id, closed.causation_id) == ("route-7", str(delivery.event_id))
    [outcome] = [r for r in relayflow_kafka.arrived if r.key == parcel_id.encode()]
    assert (outcome.topic, outcome.header(CONTENT_TYPE)) == (PARCELS_OUTCOMES,
                                                             PROTOBUF_CONTENT_TYPE)
    assert outcome.header(CORRELATION_ID) == "route-7"
    assert (await shown(outcome, relayflow_kafka.codec)).event == closed


@pytest.mark.parametrize(("event_type", "value", "reason"), [
    (ParcelShipped.avro_name, b"\x0a\xff", "malformed-protobuf"),
    (ParcelDelivered.avro_name, b"{not json", "malformed-json"),
    (ParcelDelivered.avro_name, b'{"parcel_id": "x"}', "invalid-event"),
])
async def test_bad_bodies_are_dead_lettered_with_their_format_s_reason(
        relayflow_system: Settings, relayflow_kafka: AppKafka, event_type: str, value: bytes,
        reason: str) -> None:
    parcel_id = f"P-{uuid.uuid4().hex[:8]}"
    await relayflow_kafka.send_bytes(PARCELS_EVENTS, value, key=parcel_id,
                                     headers=[(EVENT_TYPE, event_type.encode())])

    dead = await relayflow_kafka.wait_for_dead_letter(PARCELS_EVENTS, key=parcel_id)

    assert (dead.reason, dead.value) == (reason, value)
    assert (await shown(dead, relayflow_kafka.codec)).problem.startswith(reason)
