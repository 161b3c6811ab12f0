"""The tickets example in memory: the plugin's ``relayflow_memory``, no Kafka, no Temporal server.

The same application as ``tests/integration/test_example_app.py`` runs on a
real stack: its real bridge and worker, here on in-memory topics and Temporal's
time-skipping test server, so the ticket's day-long expiry passes at once. The
module overrides ``relayflow_app`` as a team's own tests would, and uses only
``relayflow``'s public API and its testing fixtures.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from examples.tickets.app import APP
from examples.tickets.events import TicketAnswered, TicketExpired, TicketOpened, TicketResolved
from examples.tickets.topics import TICKETS_EVENTS, TICKETS_OUTCOMES
from relayflow import Application, DlqReason, dlq_topic, outcome_event_id
from relayflow.testing import AppMemory

pytestmark = [pytest.mark.timeout(120)]

DAY = 86_400


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


def opened(ticket_id: str, *, within: int = DAY) -> TicketOpened:
    return TicketOpened(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), ticket_id=ticket_id,
                        customer_id="c-1", subject="cannot log in",
                        answer_within_seconds=within)


def answered(ticket_id: str) -> TicketAnswered:
    return TicketAnswered(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                          ticket_id=ticket_id, answered_by="grace", answer="reset it")


def new_id() -> str:
    return f"T-{uuid.uuid4().hex[:8]}"


async def test_an_answered_ticket_is_resolved(relayflow_memory: AppMemory) -> None:
    ticket_id = new_id()
    sent = await relayflow_memory.send(opened(ticket_id), correlation_id="support-42")
    assert (sent.topic, sent.key) == (TICKETS_EVENTS, ticket_id)
    reply = answered(ticket_id)
    await relayflow_memory.send(reply)

    resolved = await relayflow_memory.wait_for(TicketResolved, key=ticket_id)

    assert (resolved.answered_by, resolved.assigned_agent) == ("grace", "ada")
    assert (resolved.correlation_id, resolved.causation_id) == ("support-42", str(reply.event_id))
    assert resolved.event_id == outcome_event_id(f"ticket-{ticket_id}", "resolved")
    [record] = [r for r in relayflow_memory.arrived if r.key == ticket_id.encode()]
    assert (record.topic, record.event_type) == (TICKETS_OUTCOMES, TicketResolved.avro_name)
    assert relayflow_memory.dead_letters() == []


async def test_an_unanswered_ticket_expires_after_a_day_skipped_at_once(
        relayflow_memory: AppMemory) -> None:
    ticket_id = new_id()
    started = time.monotonic()
    await relayflow_memory.send(opened(ticket_id, within=DAY))

    await relayflow_memory.sleep(timedelta(hours=23))
    with pytest.raises(AssertionError, match="no TicketExpired"):
        await relayflow_memory.wait_for(TicketExpired, key=ticket_id, timeout=0.5)
    await relayflow_memory.sleep(timedelta(hours=2))
    expired = await relayflow_memory.wait_for(TicketExpired, key=ticket_id)

    assert expired.waited_seconds >= DAY
    assert expired.event_id == outcome_event_id(f"ticket-{ticket_id}", "expired")
    assert time.monotonic() - started < 30  # a day of workflow time, seconds of test time
    handle = relayflow_memory.client.get_workflow_handle(f"ticket-{ticket_id}")
    assert (await handle.result())["outcome"] == "TicketExpired"


async def test_a_poison_record_is_dead_lettered_and_its_partition_moves_on(
        relayflow_memory: AppMemory) -> None:
    ticket_id = new_id()
    poison = await relayflow_memory.send_bytes(TICKETS_EVENTS, b"\xc3\x01 not avro at all",
                                               key=ticket_id)
    [dead] = relayflow_memory.dead_letters(TICKETS_EVENTS)
    assert dead.topic == dlq_topic(TICKETS_EVENTS)
    assert (dead.reason, dead.value) == (DlqReason.UNKNOWN_SCHEMA, b"\xc3\x01 not avro at all")
    assert dead.source == (TICKETS_EVENTS, poison.partition, poison.offset)
    assert await relayflow_memory.wait_for_dead_letter(TICKETS_EVENTS, key=ticket_id) == dead

    # Keys are not parked in memory: the next record of the key is processed.
    await relayflow_memory.send(opened(ticket_id))
    await relayflow_memory.send(answered(ticket_id))
    await relayflow_memory.wait_for(TicketResolved, key=ticket_id)


async def test_an_answer_to_a_ticket_never_opened_is_dead_lettered_at_once(
        relayflow_memory: AppMemory) -> None:
    ticket_id = new_id()
    await relayflow_memory.send(answered(ticket_id))
    [dead] = relayflow_memory.dead_letters()
    assert (dead.key, dead.reason) == (ticket_id.encode(), DlqReason.TARGET_NOT_FOUND)
