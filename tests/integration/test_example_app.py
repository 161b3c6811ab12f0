"""The tickets example on a real Kafka + Temporal, through the pytest plugin's fixtures only.

This module overrides ``relayflow_app``, exactly as a team's own tests would
(their conftest would do it for the whole session).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from examples.tickets.app import APP
from examples.tickets.events import TicketAnswered, TicketOpened, TicketResolved
from examples.tickets.topics import TICKETS_EVENTS, TICKETS_OUTCOMES
from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.testing import AppKafka
from schemas.headers import CORRELATION_ID, EVENT_TYPE
from schemas.topics import dlq_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


def ticket(ticket_id: str) -> TicketOpened:
    return TicketOpened(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                        ticket_id=ticket_id, customer_id="c-1", subject="cannot log in")


def answer(ticket_id: str) -> TicketAnswered:
    return TicketAnswered(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                          ticket_id=ticket_id, answered_by="grace", answer="reset your password")


async def test_an_answered_ticket_is_resolved(relayflow_system: Settings,
                                              relayflow_kafka: AppKafka) -> None:
    ticket_id = f"T-{uuid.uuid4().hex[:8]}"
    sent = await relayflow_kafka.send(ticket(ticket_id), correlation_id="support-42")
    assert (sent.topic, sent.key) == (TICKETS_EVENTS, ticket_id)
    reply = answer(ticket_id)
    await relayflow_kafka.send(reply)

    resolved = await relayflow_kafka.wait_for(TicketResolved, key=ticket_id)

    assert (resolved.answered_by, resolved.assigned_agent) == ("grace", "ada")
    assert (resolved.correlation_id, resolved.causation_id) == ("support-42", str(reply.event_id))
    [record] = [r for r in relayflow_kafka.arrived if r.key == ticket_id.encode()]
    assert (record.topic, record.event_type) == (TICKETS_OUTCOMES, TicketResolved.avro_name)
    assert record.header(CORRELATION_ID) == "support-42"


async def test_an_undecodable_ticket_is_dead_lettered_with_its_reason(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    ticket_id = f"T-{uuid.uuid4().hex[:8]}"
    await relayflow_kafka.send_bytes(TICKETS_EVENTS, b"\xc3\x01 not avro at all", key=ticket_id,
                                     headers=[(EVENT_TYPE, TicketOpened.avro_name.encode())])

    dead = await relayflow_kafka.wait_for_dead_letter(TICKETS_EVENTS, key=ticket_id)

    assert dead.topic == dlq_topic(TICKETS_EVENTS)
    assert dead.reason == "unknown-schema"
    assert dead.value == b"\xc3\x01 not avro at all"
    assert dead.source[0] == TICKETS_EVENTS


async def test_waiting_for_what_never_comes_lists_what_did(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    ticket_id = f"T-{uuid.uuid4().hex[:8]}"
    await relayflow_kafka.send_bytes(TICKETS_EVENTS, b"", key=ticket_id)
    await relayflow_kafka.wait_for_dead_letter(TICKETS_EVENTS, key=ticket_id)

    with pytest.raises(AssertionError) as failure:
        await relayflow_kafka.wait_for(TicketResolved, key=ticket_id, timeout=0.5)

    message = str(failure.value)
    assert f"no TicketResolved ({TicketResolved.avro_name}) with key '{ticket_id}'" in message
    assert f"key='{ticket_id}'" in message
    assert "dlq-reason=empty" in message
