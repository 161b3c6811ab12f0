"""Approving as someone else, through the real broker, bridge, worker and Temporal.

The reference application's bridge and worker run through relayflow's own
runtime; the worker trusts the session's approver keys
(``tests.helpers.approver_keys``: an operator's and a console's key acting
for the approver groups, and mallory's own key acting for mallory only) and
requires signatures, as by default. Orders at the approval threshold wait
for ``orders-approvers``.

The attackers: whoever holds the ``approvals`` Kafka credential (or any
producer on the decisions topic), and whoever can signal Temporal. Each
attack is refused with its reason (in the saga's ``approval`` query and as
``ApprovalDecisionRefused`` on ``orders.outcomes``) and changes nothing: the
saga still waits, nobody decided, nothing was charged. A decision signed
with a registered key that acts for an approver asked is the positive
control: it approves.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from temporalio.client import Client, WorkflowHandle

from relayflow.config.settings import Settings
from relayflow.reference.app import APP
from relayflow.reference.events import (
    ApprovalDecided,
    ApprovalDecisionRefused,
    ApprovalRequested,
    OrderCompleted,
    OrderPlaced,
)
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.workflows.approval import APPROVAL_SIGNAL, ApprovalState, approval_id_for
from relayflow.reference.workflows.order_saga import OrderSaga, OrderSagaResult
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.testing import AppKafka, app_kafka
from schemas import EventMeta, Inbound
from schemas.signatures import SigningKey
from tests.helpers.approver_keys import MALLORY, OPERATOR, signed
from tests.helpers.support import order_placed, reference_store
from tests.integration.running import relayflow_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

APPROVER = ReferenceSettings().approver
ANN = f"{APPROVER}/ann"
WAIT = 60.0
Saga = WorkflowHandle[OrderSaga, OrderSagaResult]


@dataclass
class Running:
    settings: Settings
    client: Client
    kafka: AppKafka


@pytest.fixture
async def running(stack: Settings) -> AsyncIterator[Running]:
    async with relayflow_running(stack) as settings, app_kafka(settings, APP) as kafka:
        yield Running(settings, await connect_temporal(settings), kafka)


async def waiting(run: Running) -> tuple[OrderPlaced, Saga]:
    """An order at the approval threshold, its saga waiting for ``orders-approvers``."""
    order = order_placed(sku=f"SKU-SIG-{uuid.uuid4().hex[:8]}", quantity=1,
                         unit_price_cents=ReferenceSettings().approval_threshold_cents)
    await run.kafka.send(order)
    await run.kafka.wait_for(ApprovalRequested, key=order.order_id, timeout=WAIT)
    return order, run.client.get_workflow_handle_for(OrderSaga.run, f"order-{order.order_id}")


def decided(order: OrderPlaced, by: str = ANN) -> ApprovalDecided:
    return ApprovalDecided(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           approval_id=approval_id_for(order.order_id), order_id=order.order_id,
                           decision="APPROVED", decided_by=by)


async def refused(saga: Saga, count: int) -> ApprovalState:
    """The saga's ``approval`` once it refused ``count`` decisions."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        state = await saga.query(OrderSaga.approval)
        if len(state.refused) >= count:
            return state
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.2)


async def signal(saga: Saga, decision: ApprovalDecided) -> None:
    """Straight to Temporal, past Kafka and the bridge (what a Temporal signaller can do)."""
    meta = EventMeta(event_type=ApprovalDecided.avro_name, event_id=str(decision.event_id),
                     correlation_id=f"signalled-{decision.order_id}")
    await saga.signal(APPROVAL_SIGNAL, Inbound[ApprovalDecided](event=decision, meta=meta))


def unchanged(run: Running, order: OrderPlaced, state: ApprovalState) -> None:
    """Nobody decided, the saga waits, the order was not charged (its units stay reserved)."""
    assert (state.status, state.decided_by) == ("waiting", "")
    store = reference_store(run.settings)
    assert store.rows("payments", order.order_id) == []
    assert [r["status"] for r in store.rows("reservations", order.order_id)] == ["reserved"]


async def test_a_forged_decided_by_over_kafka_is_refused_and_changes_nothing(
    running: Running,
) -> None:
    order, saga = await waiting(running)
    impostor = SigningKey.generate(OPERATOR.key_id)  # the operator's key id, not its key
    forgeries = [
        decided(order),                                # the approver's name, unsigned
        signed(decided(order), MALLORY),               # a registered key, not ann's to sign
        signed(decided(order), impostor),              # a registered id, a stranger's key
        signed(decided(order, by="mallory"), MALLORY),  # proven, but mallory was not asked
    ]
    for forged in forgeries:
        await running.kafka.send(forged)

    state = await refused(saga, len(forgeries))
    assert [(r.event_id, r.code) for r in state.refused] == [
        (str(f.event_id), code) for f, code in zip(
            forgeries, ["unsigned", "key-not-for-approver", "bad-signature", "not-an-approver"],
            strict=True)]
    evidence = await running.kafka.wait_for(ApprovalDecisionRefused, key=order.order_id,
                                            timeout=WAIT)
    assert (evidence.reason, evidence.decided_by) == ("unsigned", ANN)
    unchanged(running, order, state)

    # The positive control: the same decision, signed by a key that acts for ann.
    await running.kafka.send(signed(decided(order)))
    assert (await asyncio.wait_for(saga.result(), WAIT)).outcome == "OrderCompleted"
    assert (await saga.query(OrderSaga.approval)).decided_by == ANN


async def test_an_unsigned_decision_signalled_through_temporal_is_refused(
    running: Running,
) -> None:
    order, saga = await waiting(running)
    await signal(saga, decided(order))
    state = await refused(saga, 1)
    assert (state.refused[0].code, state.refused[0].decided_by) == ("unsigned", ANN)
    unchanged(running, order, state)


async def test_a_genuine_decision_for_order_a_does_not_approve_order_b(running: Running) -> None:
    (a, saga_a), (b, saga_b) = await waiting(running), await waiting(running)
    genuine_for_a = signed(decided(a))
    await signal(saga_b, genuine_for_a)  # moved to B's saga by someone who can signal

    state = await refused(saga_b, 1)
    assert state.refused[0].code == "wrong-order"
    assert f"for order {a.order_id}" in state.refused[0].reason
    unchanged(running, b, state)
    evidence = await running.kafka.wait_for(ApprovalDecisionRefused, key=b.order_id,
                                            timeout=WAIT)
    assert (evidence.reason, evidence.order_id) == ("wrong-order", b.order_id)

    # Where it belongs, the same decision counts.
    await running.kafka.send(genuine_for_a)
    assert (await asyncio.wait_for(saga_a.result(), WAIT)).outcome == "OrderCompleted"
    unchanged(running, b, await saga_b.query(OrderSaga.approval))


async def test_a_decision_signed_for_an_approver_asked_approves(running: Running) -> None:
    order, saga = await waiting(running)
    await running.kafka.send(signed(decided(order)))
    completed = await running.kafka.wait_for(OrderCompleted, key=order.order_id, timeout=WAIT)
    assert completed.order_id == order.order_id
    state = await saga.query(OrderSaga.approval)
    assert (state.status, state.decided_by, state.refused) == ("approved", ANN, [])
