"""OrderSaga in Temporal's time-skipping test server, activities replaced by same-named fakes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas import OrderPlaced
from tests.support import order_placed
from tests.workflow_env import start_workflow_environment
from tests.workflow_fakes import FakeOrderActivities, decision, inbound, wait_for_approval
from workflows.approval import APPROVAL_SIGNAL, approval_id_for
from workflows.order_saga import OrderSaga, OrderSagaResult
from workflows.outcomes import outcome_event_id

STEPS = ("reserve_inventory", "charge_payment", "create_shipment")


@dataclass
class Harness:
    env: WorkflowEnvironment
    fakes: FakeOrderActivities
    task_queue: str

    async def start(self, order: OrderPlaced) -> WorkflowHandle[Any, Any]:
        return await self.env.client.start_workflow(
            OrderSaga.run, inbound(order), id=f"order-{order.order_id}",
            task_queue=self.task_queue)

    async def decide(self, handle: WorkflowHandle[Any, Any], order_id: str,
                     verdict: Literal["APPROVED", "REJECTED"], *, by: str = "ann",
                     event_id: uuid.UUID | None = None, approval_id: str | None = None) -> None:
        event = decision(order_id, verdict, by=by, event_id=event_id, approval_id=approval_id)
        await handle.signal(APPROVAL_SIGNAL, inbound(event))

    def published_types(self) -> list[str]:
        return self.fakes.published_types()


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    # A test server of its own: skipped time must not leak between tests.
    fakes = FakeOrderActivities(**getattr(request, "param", {}))
    task_queue = f"tq-{uuid.uuid4()}"
    async with (
        await start_workflow_environment(request.config) as env,
        Worker(env.client, task_queue=task_queue, workflows=[OrderSaga],
               activities=fakes.all()),
    ):
        yield Harness(env, fakes, task_queue)


async def test_success_runs_every_step_and_publishes_completed(harness: Harness) -> None:
    order = order_placed()
    result: OrderSagaResult = await (await harness.start(order)).result()

    assert harness.fakes.calls == [*STEPS, "publish_outcome"]
    assert result.outcome == "OrderCompleted"
    [published] = harness.fakes.published
    assert published.event_type == "relayflow.orders.OrderCompleted"
    assert published.event["correlation_id"] == "corr-1"
    assert published.event["causation_id"] == str(order.event_id)
    assert published.event["event_id"] == str(outcome_event_id(f"order-{order.order_id}",
                                                                "completed"))


@pytest.mark.parametrize(
    ("harness", "calls", "reason", "compensations"),
    [
        ({"fail_at": "reserve_inventory"},
         ["reserve_inventory", "release_inventory"], "out_of_stock", []),
        ({"fail_at": "charge_payment"},
         ["reserve_inventory", "charge_payment", "refund_payment", "release_inventory"],
         "payment_declined", ["release_inventory"]),
        ({"fail_at": "create_shipment"},
         [*STEPS, "cancel_shipment", "refund_payment", "release_inventory"],
         "shipment_failed", ["refund_payment", "release_inventory"]),
    ],
    indirect=["harness"],
    ids=STEPS,
)
async def test_failure_compensates_in_reverse_order(
    harness: Harness, calls: list[str], reason: str, compensations: list[str]
) -> None:
    result: OrderSagaResult = await (await harness.start(order_placed())).result()

    # Each compensation was registered before its step, so the failed step's own
    # undo runs too (a no-op here): the step might have taken effect before failing.
    assert harness.fakes.calls == [*calls, "publish_outcome"]
    assert (result.outcome, result.reason, result.compensations) == (
        "OrderFailed", reason, compensations)
    [published] = harness.fakes.published
    assert published.event["reason"] == reason
    assert published.event["failed_step"] == harness.fakes.fail_at
    assert published.event["compensations"] == compensations


@pytest.mark.parametrize("harness", [{"fail_at": "reserve_inventory"}], indirect=True)
async def test_business_refusal_is_not_retried(harness: Harness) -> None:
    await (await harness.start(order_placed())).result()
    assert harness.fakes.calls.count("reserve_inventory") == 1


@pytest.mark.parametrize("harness", [{"block_at": "create_shipment"}], indirect=True)
async def test_cancellation_compensates_and_reports_cancelled(harness: Harness) -> None:
    handle = await harness.start(order_placed())
    await asyncio.wait_for(harness.fakes.blocked.wait(), timeout=30)
    await handle.cancel()

    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    assert harness.fakes.calls == [*STEPS, "cancel_shipment", "refund_payment",
                                   "release_inventory", "publish_outcome"]
    [published] = harness.fakes.published
    assert published.event["reason"] == "cancelled"
    assert published.event["compensations"] == ["refund_payment", "release_inventory"]


BIG = 2_000  # 2,000 units x 100 cents = 200,000 cents, above the 100,000 threshold


def big_order(**kwargs: Any) -> OrderPlaced:
    return order_placed(quantity=BIG, unit_price_cents=100, **kwargs)


async def test_small_order_needs_no_approval(harness: Harness) -> None:
    handle = await harness.start(order_placed())
    await handle.result()
    assert harness.published_types() == ["OrderCompleted"]
    assert (await handle.query(OrderSaga.approval)).status == "not-required"


async def test_approved_order_completes(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    state = await wait_for_approval(handle)
    assert (state.approver, state.approval_id) == ("approvers", approval_id_for(order.order_id))
    assert state.waiting_since is not None
    assert state.deadline == state.waiting_since + timedelta(seconds=3600)
    await harness.decide(handle, order.order_id, "APPROVED")

    result: OrderSagaResult = await handle.result()
    assert result.outcome == "OrderCompleted"
    assert harness.published_types() == ["ApprovalRequested", "OrderCompleted"]
    requested = harness.fakes.published[0].event
    assert (requested["approver"], requested["amount_cents"]) == ("approvers", BIG * 100)
    # Payment only after approval was asked for and given.
    assert harness.fakes.calls == ["reserve_inventory", "publish_outcome", "charge_payment",
                                   "create_shipment", "publish_outcome"]


async def test_rejected_order_compensates_and_fails(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    await harness.decide(handle, order.order_id, "REJECTED", by="bob")

    result: OrderSagaResult = await handle.result()
    assert (result.reason, result.compensations) == ("rejected", ["release_inventory"])
    assert "charge_payment" not in harness.fakes.calls
    failed = harness.fakes.published[-1].event
    assert failed["failed_step"] == "approval"
    assert "bob" in failed["error"]


async def test_escalates_then_approved(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    await harness.env.sleep(3601)
    state = await wait_for_approval(handle, escalated=True)
    assert state.approver == "managers"
    await harness.decide(handle, order.order_id, "APPROVED", by="boss")

    assert (await handle.result()).outcome == "OrderCompleted"
    assert harness.published_types() == ["ApprovalRequested", "ApprovalEscalated",
                                         "OrderCompleted"]
    escalated = harness.fakes.published[1].event
    assert (escalated["previous_approver"], escalated["approver"]) == ("approvers", "managers")


async def test_no_decision_times_out_after_escalation(harness: Harness) -> None:
    handle = await harness.start(big_order())
    result: OrderSagaResult = await handle.result()  # the test server skips both waits

    assert (result.reason, result.compensations) == ("approval_timed_out", ["release_inventory"])
    assert harness.published_types() == ["ApprovalRequested", "ApprovalEscalated",
                                         "ApprovalTimedOut", "OrderFailed"]
    assert harness.fakes.published[2].event["waited_seconds"] == 3600 + 7200
    assert (await handle.query(OrderSaga.approval)).status == "timed-out"


async def test_timeout_from_the_event_overrides_settings(harness: Harness) -> None:
    handle = await harness.start(big_order(approval_timeout_seconds=60))
    await handle.result()
    assert harness.fakes.published[2].event["waited_seconds"] == 120


@pytest.mark.parametrize("harness", [{"block_at": "reserve_inventory"}], indirect=True)
async def test_decision_before_the_saga_asks_is_kept(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    await asyncio.wait_for(harness.fakes.blocked.wait(), timeout=30)
    # reserve_inventory runs and cannot finish before release: the saga has not asked yet.
    await harness.decide(handle, order.order_id, "APPROVED")
    assert (await handle.query(OrderSaga.status)).step == "reserve_inventory"
    assert (await handle.query(OrderSaga.approval)).status == "pending"
    assert harness.fakes.published == []

    harness.fakes.release.set()
    assert (await handle.result()).outcome == "OrderCompleted"

    state = await handle.query(OrderSaga.approval)
    assert (state.status, state.decided_by, state.escalated) == ("approved", "ann", False)
    # It still asks, then finds the decision already there and goes on.
    assert harness.published_types() == ["ApprovalRequested", "OrderCompleted"]
    assert harness.fakes.calls == ["reserve_inventory", "publish_outcome", "charge_payment",
                                   "create_shipment", "publish_outcome"]
    history = await handle.fetch_history()
    kinds = [event.event_type for event in history.events]
    # The signal is in the history before the first activity (reserve_inventory) completed...
    assert (kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
            < kinds.index(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED))
    # ...and the saga never waited for it: no timer fired, done before the first deadline.
    assert EventType.EVENT_TYPE_TIMER_FIRED not in kinds
    requested, completed = (published.event for published in harness.fakes.published)
    assert (datetime.fromisoformat(completed["occurred_at"])
            < datetime.fromisoformat(requested["deadline"]))


async def test_duplicate_and_conflicting_decisions_have_one_effect(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    event_id = uuid.uuid4()
    await harness.decide(handle, order.order_id, "APPROVED", event_id=event_id)
    await harness.decide(handle, order.order_id, "APPROVED", event_id=event_id)  # redelivery
    await harness.decide(handle, order.order_id, "REJECTED", by="eve")  # too late
    await harness.decide(handle, order.order_id, "REJECTED", approval_id="approval-other")

    assert (await handle.result()).outcome == "OrderCompleted"
    ignored = (await handle.query(OrderSaga.approval)).ignored
    assert len(ignored) == 2
    assert "already decided by ann" in ignored[0]
    assert "unknown approval id" in ignored[1]
