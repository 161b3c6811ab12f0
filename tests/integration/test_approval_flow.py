"""Orders that need approval, on a real Kafka and a real Temporal: bridge + worker in this process.

An approval decided through Kafka is covered in ``test_order_flow.py``
(``test_approval_round_trip_through_kafka``); here nobody decides in time, the
order is cancelled while it waits, or someone who was not asked decides first.
Each test waits for its saga to close before it reads the outcome topic to its
end, so "exactly once" is checked on everything the saga published, not on
what arrived within some wait.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from typer.testing import CliRunner

from relayflow.cli.main import app
from relayflow.config.settings import Settings
from relayflow.reference.activities.store import DEFAULT_STOCK
from relayflow.reference.app import APP
from relayflow.reference.events import (
    ApprovalDecided,
    ApprovalDecisionRefused,
    ApprovalEscalated,
    ApprovalRequested,
    ApprovalTimedOut,
    OrderCancelled,
    OrderCompleted,
    OrderFailed,
    OrderPlaced,
)
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import APPROVALS_DECISIONS, ORDERS_EVENTS, ORDERS_OUTCOMES
from relayflow.reference.workflows.approval import approval_id_for
from relayflow.reference.workflows.order_saga import OrderSaga, OrderSagaResult
from relayflow.runtime.bootstrap import connect_temporal
from schemas import Outcome
from schemas.framing import to_record
from schemas.headers import CAUSATION_ID, CORRELATION_ID, EVENT_ID, EVENT_TYPE
from tests.helpers.approver_keys import signed
from tests.helpers.support import KafkaProbe, kafka_probe, order_placed, reference_store
from workflows.outcomes import outcome_event_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REFERENCE = ReferenceSettings()
"""The reference app's settings, as its worker reads them (the same environment)."""

CODEC = APP.codec()
WAIT = 60.0  # bound on waiting for a saga to close


@pytest.fixture
async def probe(system: Settings) -> AsyncIterator[KafkaProbe]:
    async with kafka_probe(system, [ORDERS_OUTCOMES]) as p:
        yield p


def needs_approval(system: Settings, timeout_seconds: int | None = None) -> OrderPlaced:
    """An order at the approval threshold, of a SKU no other test touches."""
    return order_placed(sku=f"SKU-IT-{uuid.uuid4().hex[:8]}", quantity=1,
                        unit_price_cents=REFERENCE.approval_threshold_cents,
                        approval_timeout_seconds=timeout_seconds)


def outcomes_of(probe: KafkaProbe, order: OrderPlaced) -> list[ConsumerRecord[bytes, bytes]]:
    return [r for r in probe.seen
            if r.topic == ORDERS_OUTCOMES and r.key == order.order_id.encode()]


def decoded(record: ConsumerRecord[bytes, bytes], order: OrderPlaced,
            correlation_id: str, step: str) -> Outcome:
    """The outcome of a record, checked against the contract (key, ids, headers)."""
    event = CODEC.decode(record.value)
    assert isinstance(event, Outcome)
    headers = dict(record.headers)
    assert record.key == order.order_id.encode()
    assert event.event_id == outcome_event_id(f"order-{order.order_id}", step)
    assert (event.correlation_id, event.causation_id) == (correlation_id, str(order.event_id))
    assert headers[EVENT_TYPE] == event.avro_name.encode()
    assert headers[EVENT_ID] == str(event.event_id).encode()
    assert headers[CORRELATION_ID] == correlation_id.encode()
    assert headers[CAUSATION_ID] == str(order.event_id).encode()
    return event


async def test_nobody_decides_the_request_escalates_times_out_and_the_order_fails(
    probe: KafkaProbe, system: Settings,
) -> None:
    order = needs_approval(system, timeout_seconds=2)  # each of the two stages waits 2 s
    await probe.send_record(ORDERS_EVENTS, to_record(order, CODEC, correlation_id="corr-esc"))

    handle = (await connect_temporal(system)).get_workflow_handle(f"order-{order.order_id}",
                                                         result_type=OrderSagaResult)
    await probe.wait_for(lambda r: r.key == order.order_id.encode())  # the saga is under way
    result = await asyncio.wait_for(handle.result(), WAIT)  # closed: publishes nothing more
    assert (result.outcome, result.reason) == ("OrderFailed", "approval_timed_out")

    await probe.caught_up()
    records = outcomes_of(probe, order)
    steps = ["approval-requested", "approval-escalated", "approval-timed-out", "failed"]
    assert len(records) == len(steps), [dict(r.headers)[EVENT_TYPE] for r in records]
    requested, escalated, timed_out, failed = (
        decoded(r, order, "corr-esc", step) for r, step in zip(records, steps, strict=True))

    approval_id = approval_id_for(order.order_id)
    assert isinstance(requested, ApprovalRequested)
    assert (requested.approval_id, requested.approver) == (approval_id, REFERENCE.approver)
    assert requested.amount_cents == order.amount_cents
    assert isinstance(escalated, ApprovalEscalated)
    assert (escalated.approval_id, escalated.previous_approver, escalated.approver) == (
        approval_id, REFERENCE.approver, REFERENCE.escalation_approver)
    assert isinstance(timed_out, ApprovalTimedOut)
    assert (timed_out.approval_id, timed_out.last_approver) == (
        approval_id, REFERENCE.escalation_approver)
    assert timed_out.waited_seconds >= 2 * 2  # the saga's own timers: both stages waited out
    assert isinstance(failed, OrderFailed)
    assert (failed.reason, failed.failed_step) == ("approval_timed_out", "approval")
    assert failed.compensations == ("release_inventory",)

    store = reference_store(system)
    [reservation] = store.rows("reservations", order.order_id)
    assert reservation["status"] == "released"
    assert store.available(order.items[0].sku) == DEFAULT_STOCK
    assert store.rows("payments", order.order_id) == []  # never charged


async def test_cancel_while_waiting_for_approval_releases_the_reservation(
    probe: KafkaProbe, system: Settings,
) -> None:
    order = needs_approval(system)  # the configured wait: a day, nobody decides here
    sku = order.items[0].sku
    await probe.send_record(ORDERS_EVENTS, to_record(order, CODEC, correlation_id="corr-cxl"))

    # Mid-saga: inventory reserved, waiting for a person.
    [asked] = await probe.wait_for(lambda r: r.key == order.order_id.encode())
    assert isinstance(decoded(asked, order, "corr-cxl", "approval-requested"), ApprovalRequested)
    store = reference_store(system)
    [reservation] = store.rows("reservations", order.order_id)
    assert reservation["status"] == "reserved"
    assert store.available(sku) == DEFAULT_STOCK - 1

    cancel = OrderCancelled(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                            order_id=order.order_id, reason="customer changed their mind")
    await probe.send_record(ORDERS_EVENTS, to_record(cancel, CODEC, correlation_id="corr-cxl"))
    handle = (await connect_temporal(system)).get_workflow_handle(f"order-{order.order_id}")
    with pytest.raises(WorkflowFailureError):  # cancelled, after compensating and reporting
        await asyncio.wait_for(handle.result(), WAIT)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED

    await probe.caught_up()
    records = outcomes_of(probe, order)
    assert len(records) == 2, [dict(r.headers)[EVENT_TYPE] for r in records]
    assert records[0].offset == asked.offset
    failed = decoded(records[1], order, "corr-cxl", "failed")
    assert isinstance(failed, OrderFailed)
    assert (failed.reason, failed.failed_step) == ("cancelled", None)
    assert failed.compensations == ("release_inventory",)

    [reservation] = store.rows("reservations", order.order_id)
    assert reservation["status"] == "released"
    assert store.available(sku) == DEFAULT_STOCK  # the units are back
    assert store.rows("payments", order.order_id) == []


def approval_decided(order: OrderPlaced, decided_by: str) -> ApprovalDecided:
    return signed(ApprovalDecided(  # by the session's key for decided_by (mallory's: her own)
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
        approval_id=approval_id_for(order.order_id), order_id=order.order_id,
        decision="APPROVED", decided_by=decided_by))


async def test_a_decision_by_someone_not_asked_is_refused_as_evidence_and_the_order_waits(
    probe: KafkaProbe, system: Settings,
) -> None:
    order = needs_approval(system)  # the configured wait: a day
    await probe.send_record(ORDERS_EVENTS, to_record(order, CODEC, correlation_id="corr-who"))
    [asked] = await probe.wait_for(lambda r: r.key == order.order_id.encode())
    assert isinstance(decoded(asked, order, "corr-who", "approval-requested"), ApprovalRequested)

    wrong = approval_decided(order, "mallory")
    await probe.send_record(APPROVALS_DECISIONS,
                            to_record(wrong, CODEC, correlation_id="corr-who"))
    [_, evidence] = await probe.wait_for(lambda r: r.key == order.order_id.encode(), count=2)
    refused = CODEC.decode(evidence.value)
    assert isinstance(refused, ApprovalDecisionRefused)
    assert refused.event_id == outcome_event_id(f"order-{order.order_id}",
                                                f"approval-decision-refused/{wrong.event_id}")
    assert (refused.correlation_id, refused.causation_id) == ("corr-who", str(wrong.event_id))
    assert dict(evidence.headers)[CAUSATION_ID] == str(wrong.event_id).encode()
    assert dict(evidence.headers)[EVENT_TYPE] == b"relayflow.orders.ApprovalDecisionRefused"
    assert (refused.decided_by, refused.decision, refused.reason, refused.approvers) == (
        "mallory", "APPROVED", "not-an-approver", (REFERENCE.approver,))

    # The order keeps waiting, the refusal on record: in the saga's query and the CLI.
    handle = (await connect_temporal(system)).get_workflow_handle(f"order-{order.order_id}",
                                                                  result_type=OrderSagaResult)
    state = await handle.query(OrderSaga.approval)
    assert (state.status, state.decided_by) == ("waiting", "")
    assert [(r.decided_by, r.event_id) for r in state.refused] == [
        ("mallory", str(wrong.event_id))]
    # In a thread: the command runs its own event loop.
    listed = await asyncio.to_thread(CliRunner().invoke, app, ["approvals"],
                                     env=system.as_env() | {"COLUMNS": "400"})
    assert listed.exit_code == 0, listed.output
    [row] = [line for line in listed.output.splitlines() if handle.id in line]
    assert "1: mallory (APPROVED)" in row
    assert REFERENCE.approver in row

    right = approval_decided(order, f"{REFERENCE.approver}/ann")
    await probe.send_record(APPROVALS_DECISIONS,
                            to_record(right, CODEC, correlation_id="corr-who"))
    result = await asyncio.wait_for(handle.result(), WAIT)
    assert result.outcome == "OrderCompleted"
    assert (await handle.query(OrderSaga.approval)).decided_by == f"{REFERENCE.approver}/ann"

    await probe.caught_up()
    types = [dict(r.headers)[EVENT_TYPE].decode().rsplit(".", 1)[1]
             for r in outcomes_of(probe, order)]
    assert types == ["ApprovalRequested", "ApprovalDecisionRefused", "OrderCompleted"]
    assert isinstance(CODEC.decode(outcomes_of(probe, order)[-1].value), OrderCompleted)
