"""``TemporalCommands`` against Temporal's test server: what duplicates and closed targets become.

Each record goes through the real ``Decoder`` and route table
(``bridge.routes.ROUTES``), then ``TemporalCommands.execute`` sends the
command to the time-skipping test server, where ``OrderSaga`` runs with
same-named fake activities. So these tests fail when the bridge's id policies
or its error classification change, not only when Temporal does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bridge.commands import TemporalCommands
from bridge.decoding import Routed
from bridge.failures import PermanentFailure
from bridge.routes import Action
from relayflow.reference.app import ROUTES
from relayflow.reference.events import ApprovalDecided, OrderPlaced
from relayflow.reference.topics import APPROVALS_DECISIONS, ORDERS_EVENTS
from relayflow.reference.workflows.order_saga import OrderSaga, OrderSagaResult
from schemas import Event
from tests.helpers.support import decoder, order_placed, record
from tests.helpers.workflow_fakes import FakeOrderActivities, decision, wait_for_approval

BIG = 2_000  # units of 100 cents: above the fake policy's approval threshold


@dataclass
class Bridge:
    env: WorkflowEnvironment
    fakes: FakeOrderActivities
    commands: TemporalCommands

    @staticmethod
    async def routed(event: Event, topic: str) -> Routed:
        """The record the producer would send, consumed and decoded as the bridge does."""
        return await decoder().decode(record(event, topic=topic))

    async def execute(self, routed: Routed) -> str:
        return await self.commands.execute(routed.route, routed.inbound)

    def saga(self, order: OrderPlaced) -> WorkflowHandle[Any, OrderSagaResult]:
        return self.env.client.get_workflow_handle_for(OrderSaga.run, f"order-{order.order_id}")


@pytest.fixture
async def bridge(request: pytest.FixtureRequest,
                 workflow_env: WorkflowEnvironment) -> AsyncIterator[Bridge]:
    fakes = FakeOrderActivities(**getattr(request, "param", {}))
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(workflow_env.client, task_queue=task_queue, workflows=[OrderSaga],
                      activities=fakes.all()):
        yield Bridge(workflow_env, fakes, TemporalCommands(workflow_env.client, task_queue))


@pytest.mark.parametrize("bridge", [{"block_at": "charge_payment"}], indirect=True)
async def test_duplicate_start_attaches_then_is_rejected_after_completion(bridge: Bridge) -> None:
    order = order_placed()
    placed = await bridge.routed(order, ORDERS_EVENTS)
    assert placed.route is ROUTES.lookup(ORDERS_EVENTS, OrderPlaced.avro_name)
    assert placed.route.action is Action.START

    assert await bridge.execute(placed) == "started"
    await asyncio.wait_for(bridge.fakes.blocked.wait(), timeout=30)  # the saga runs
    run_id = (await bridge.saga(order).describe()).run_id
    # A redelivery while the saga runs attaches to it: same run, nothing new started.
    assert await bridge.execute(await bridge.routed(order, ORDERS_EVENTS)) == "started"
    assert (await bridge.saga(order).describe()).run_id == run_id

    bridge.fakes.release.set()
    result = await bridge.saga(order).result()
    assert result.outcome == "OrderCompleted"
    # After completion a redelivery is done already: no second run, no second charge.
    assert await bridge.execute(await bridge.routed(order, ORDERS_EVENTS)) == "already-started"
    assert (await bridge.saga(order).describe()).run_id == run_id
    assert bridge.fakes.calls.count("charge_payment") == 1
    assert bridge.fakes.calls.count("reserve_inventory") == 1


async def test_a_second_start_event_for_a_finished_workflow_is_logged_once_with_where_and_why(
        bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    order = order_placed()
    assert await bridge.execute(await bridge.routed(order, ORDERS_EVENTS)) == "started"
    assert (await bridge.saga(order).result()).outcome == "OrderCompleted"
    # Not a redelivery: another event (its own id) starting the same business key.
    again = order.model_copy(update={"event_id": uuid.uuid4()})
    second = await decoder().decode(record(again, 41, partition=3, topic=ORDERS_EVENTS))
    caplog.set_level("INFO", logger="bridge.commands")

    assert await bridge.execute(second) == "already-started"

    [line] = [r for r in caplog.records if r.name == "bridge.commands"]
    assert line.levelname == "INFO"
    workflow_id = f"order-{order.order_id}"
    message = line.getMessage()
    for fact in (workflow_id, OrderPlaced.avro_name, str(again.event_id),
                 f"{ORDERS_EVENTS}[3]@41", "already closed", "REJECT_DUPLICATE"):
        assert fact in message, (fact, message)
    fields = {name: getattr(line, name) for name in ("topic", "partition", "offset",
                                                     "event_type", "event_id", "workflow_id")}
    assert fields == {"topic": ORDERS_EVENTS, "partition": 3, "offset": 41,
                      "event_type": OrderPlaced.avro_name, "event_id": str(again.event_id),
                      "workflow_id": workflow_id}
    assert bridge.fakes.calls.count("charge_payment") == 1


async def decided(order: OrderPlaced) -> Routed:
    routed = await Bridge.routed(decision(order.order_id, "APPROVED"), APPROVALS_DECISIONS)
    assert routed.route is ROUTES.lookup(APPROVALS_DECISIONS, ApprovalDecided.avro_name)
    assert routed.route.action is Action.SIGNAL
    return routed


async def test_decision_for_a_waiting_order_is_signalled(bridge: Bridge) -> None:
    order = order_placed(quantity=BIG, unit_price_cents=100)
    assert await bridge.execute(await bridge.routed(order, ORDERS_EVENTS)) == "started"
    await wait_for_approval(bridge.saga(order))

    assert await bridge.execute(await decided(order)) == "signalled"
    result = await bridge.saga(order).result()
    assert result.outcome == "OrderCompleted"
    assert (await bridge.saga(order).query(OrderSaga.approval)).decided_by == "approvers/ann"


async def test_decision_for_a_finished_order_is_dead_lettered_as_target_closed(
    bridge: Bridge,
) -> None:
    order = order_placed()
    assert await bridge.execute(await bridge.routed(order, ORDERS_EVENTS)) == "started"
    await bridge.saga(order).result()

    with pytest.raises(PermanentFailure) as info:
        await bridge.execute(await decided(order))
    assert info.value.reason == "target-closed"


async def test_decision_for_an_order_never_placed_is_dead_lettered_as_target_not_found(
    bridge: Bridge,
) -> None:
    with pytest.raises(PermanentFailure) as info:
        await bridge.execute(await decided(order_placed()))
    assert info.value.reason == "target-not-found"
    assert bridge.fakes.calls == []
