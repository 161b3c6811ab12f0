"""OrderSaga in Temporal's time-skipping test server, activities replaced by same-named fakes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, CancelledError, WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.orders import (
    ChargePaymentInput,
    CompensationInput,
    CompensationResult,
    CreateShipmentInput,
    ReserveInventoryInput,
    StepResult,
)
from activities.outcomes import PublishOutcomeInput, PublishOutcomeResult
from schemas import EventMeta, Inbound, OrderPlaced
from tests.support import order_placed
from workflows.order_saga import OrderSaga, OrderSagaResult, outcome_event_id

STEPS = ("reserve_inventory", "charge_payment", "create_shipment")


@dataclass
class FakeActivities:
    """Same-named stand-ins that record every call; a step can be made to fail or block."""

    fail_at: str | None = None
    block_at: str | None = None
    calls: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    published: list[PublishOutcomeInput] = field(default_factory=list)
    blocked: asyncio.Event = field(default_factory=asyncio.Event)

    async def _step(self, step: str, key: str) -> StepResult:
        self.calls.append(step)
        if step == self.fail_at:
            raise ApplicationError("refused", type={
                "reserve_inventory": "OutOfStock", "charge_payment": "PaymentDeclined",
                "create_shipment": "ShipmentRejected"}[step], non_retryable=True)
        if step == self.block_at:
            self.blocked.set()
            await asyncio.Event().wait()  # until cancelled
        self.done.add(step)
        return StepResult(id=key)

    def _undo(self, name: str, step: str) -> CompensationResult:
        self.calls.append(name)
        undone = step in self.done
        self.done.discard(step)
        return CompensationResult(undone=undone, state="undone" if undone else "absent")

    def all(self) -> Sequence[Any]:
        @activity.defn(name="reserve_inventory")
        async def reserve(request: ReserveInventoryInput) -> StepResult:
            return await self._step("reserve_inventory", request.idempotency_key)

        @activity.defn(name="charge_payment")
        async def charge(request: ChargePaymentInput) -> StepResult:
            return await self._step("charge_payment", request.idempotency_key)

        @activity.defn(name="create_shipment")
        async def ship(request: CreateShipmentInput) -> StepResult:
            return await self._step("create_shipment", request.idempotency_key)

        @activity.defn(name="release_inventory")
        async def release(request: CompensationInput) -> CompensationResult:
            return self._undo("release_inventory", "reserve_inventory")

        @activity.defn(name="refund_payment")
        async def refund(request: CompensationInput) -> CompensationResult:
            return self._undo("refund_payment", "charge_payment")

        @activity.defn(name="cancel_shipment")
        async def cancel(request: CompensationInput) -> CompensationResult:
            return self._undo("cancel_shipment", "create_shipment")

        @activity.defn(name="publish_outcome")
        async def publish(request: PublishOutcomeInput) -> PublishOutcomeResult:
            self.calls.append("publish_outcome")
            self.published.append(request)
            return PublishOutcomeResult(topic=request.topic, partition=0, offset=0,
                                        event_id=str(request.event["event_id"]))

        return [reserve, charge, ship, release, refund, cancel, publish]


@dataclass
class Harness:
    env: WorkflowEnvironment
    fakes: FakeActivities
    task_queue: str

    async def start(self, order: OrderPlaced, **kwargs: Any) -> WorkflowHandle[Any, Any]:
        inbound = Inbound[OrderPlaced](event=order, meta=EventMeta(
            event_type=order.avro_name, event_id=str(order.event_id), correlation_id="corr-1"))
        return await self.env.client.start_workflow(
            OrderSaga.run, inbound, id=f"order-{order.order_id}", task_queue=self.task_queue,
            **kwargs)


@pytest.fixture
async def harness(workflow_env: WorkflowEnvironment,
                  request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    fakes = FakeActivities(**getattr(request, "param", {}))
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(workflow_env.client, task_queue=task_queue, workflows=[OrderSaga],
                      activities=fakes.all()):
        yield Harness(workflow_env, fakes, task_queue)


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


async def test_duplicate_start_attaches_then_is_rejected_after_completion(
    harness: Harness,
) -> None:
    order = order_placed()
    policies = {"id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
                "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE}
    first = await harness.start(order, **policies)
    second = await harness.start(order, **policies)
    assert second.result_run_id == first.result_run_id
    await first.result()
    with pytest.raises(WorkflowAlreadyStartedError):
        await harness.start(order, **policies)
    assert harness.fakes.calls.count("charge_payment") == 1


@pytest.mark.parametrize("harness", [{"fail_at": "charge_payment"}], indirect=True)
async def test_history_replays_deterministically(harness: Harness) -> None:
    handle = await harness.start(order_placed())
    await handle.result()
    history = await handle.fetch_history()
    replayer = Replayer(workflows=[OrderSaga], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
