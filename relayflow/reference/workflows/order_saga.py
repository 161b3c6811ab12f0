"""``OrderSaga``: reserve inventory → charge payment → create shipment, compensated.

Each compensation is registered *before* its step runs: a step can take
effect and still report failure (a timeout after the write), so the undo must
be on the list either way; compensations are idempotent and a no-op when
there is nothing to undo, and then they void the step's key, so a step still
running when its compensation ran (a cancel arrives mid-step: activities are
cancelled with TRY_CANCEL and do not heartbeat) takes no effect when it lands.
On a failed step or a cancellation the registered compensations run in
reverse order, then the outcome (``OrderCompleted`` or ``OrderFailed``) is
published to ``orders.outcomes`` through an activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from relayflow.reference.activities.orders import (
        BUSINESS_ERRORS,
        ChargePaymentInput,
        CompensationInput,
        CompensationResult,
        CreateShipmentInput,
        OrderActivities,
        ReserveInventoryInput,
        StepResult,
    )
    from relayflow.reference.events import (
        ApprovalDecided,
        OrderCompleted,
        OrderFailed,
        OrderPlaced,
    )
    from relayflow.reference.timeouts import activity_timeouts
    from relayflow.reference.topics import ORDERS_OUTCOMES
    from relayflow.reference.workflows.approval import (
        APPROVAL_SIGNAL,
        ApprovalRefused,
        ApprovalStage,
        ApprovalState,
    )
    from schemas import Inbound
    from workflows.outcomes import outcome_event_id, publish_outcome
    from workflows.versioning import versioning_behavior

__all__ = ["OrderSaga", "OrderSagaResult", "SagaStatus"]


STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=10,
    non_retryable_error_types=list(BUSINESS_ERRORS),
)
# A compensation must eventually happen: retry without an attempt limit (the
# stuck workflow is visible in Temporal) rather than leave a charge behind.
COMPENSATION_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)

_REASONS = {
    "OutOfStock": "out_of_stock",
    "PaymentDeclined": "payment_declined",
    "ShipmentRejected": "shipment_failed",
    "InvalidOrder": "invalid_order",
}


class OrderSagaResult(BaseModel):
    """What the saga ended with.

    Attributes:
        outcome: ``OrderCompleted`` or ``OrderFailed``.
        reason: Failure reason, empty on success.
        compensations: Compensations that undid something, in the order they ran.
        outcome_event_id: Id of the published outcome event.
    """

    outcome: str
    reason: str = ""
    compensations: list[str] = []
    outcome_event_id: str


class SagaStatus(BaseModel):
    """Answer of the ``status`` query.

    Attributes:
        step: Step running now (or ``compensating``, ``publishing``, ``done``).
        completed_steps: Steps that succeeded.
        compensations: Compensations that undid something so far.
    """

    step: str
    completed_steps: list[str]
    compensations: list[str]


@dataclass(frozen=True)
class _Undo:
    name: str
    run: Callable[[], Awaitable[CompensationResult]]


class _StepFailed(Exception):
    def __init__(self, step: str, reason: str, error: str) -> None:
        super().__init__(error)
        self.step, self.reason, self.error = step, reason, error


# Pinned on a versioned worker: a run (approvals wait days) ends on the build it
# started on, so its steps and their compensations never change under it.
@workflow.defn(name="OrderSaga",
               versioning_behavior=versioning_behavior(VersioningBehavior.PINNED))
class OrderSaga:
    """One order's saga; workflow id ``order-<order_id>``."""

    def __init__(self) -> None:
        self._step = "starting"
        self._completed: list[str] = []
        self._compensations: list[str] = []
        self._approval = ApprovalStage()

    @workflow.signal(name=APPROVAL_SIGNAL)
    def approval_decided(self, inbound: Inbound[ApprovalDecided]) -> None:
        """A person's decision; may arrive before the saga asks (it is kept)."""
        self._approval.receive(inbound)

    @workflow.query(name="approval")
    def approval(self) -> ApprovalState:
        """Whether approval is needed, who must decide, since when and until when."""
        return self._approval.state.model_copy(deep=True)

    @workflow.query(name="status")
    def status(self) -> SagaStatus:
        """Current step, completed steps and compensations so far."""
        return SagaStatus(step=self._step, completed_steps=list(self._completed),
                          compensations=list(self._compensations))

    @workflow.run
    async def run(self, inbound: Inbound[OrderPlaced]) -> OrderSagaResult:
        """Run the saga for one ``OrderPlaced`` event.

        Args:
            inbound: The event and its delivery metadata (correlation ids).

        Returns:
            The outcome; it was also published to ``orders.outcomes``.
        """
        order = inbound.event
        undo: list[_Undo] = []
        try:
            ids = await self._steps(inbound, undo)
        except _StepFailed as failed:
            await self._compensate(undo)
            return await self._fail(inbound, failed.reason, failed.step, failed.error)
        except asyncio.CancelledError:
            # Cancellation was requested (OrderCancelled): undo what ran, say so,
            # and end as cancelled. Activities scheduled after the catch run normally.
            await self._compensate(undo)
            await self._fail(inbound, "cancelled", None, "order cancelled")
            raise
        self._step = "publishing"
        event_id = outcome_event_id(workflow.info().workflow_id, "completed")
        completed = OrderCompleted(
            event_id=event_id, occurred_at=workflow.now(),
            correlation_id=inbound.meta.correlation_id, causation_id=inbound.meta.event_id,
            order_id=order.order_id, amount_cents=order.amount_cents, currency=order.currency,
            reservation_id=ids["reserve_inventory"], payment_id=ids["charge_payment"],
            shipment_id=ids["create_shipment"],
        )
        await publish_outcome(ORDERS_OUTCOMES, completed, inbound.meta.traceparent)
        self._step = "done"
        return OrderSagaResult(outcome="OrderCompleted", outcome_event_id=str(event_id))

    async def _steps(self, inbound: Inbound[OrderPlaced], undo: list[_Undo]) -> dict[str, str]:
        order = inbound.event
        wid = workflow.info().workflow_id

        def key(step: str) -> str:
            return f"{wid}/{step}"

        ids = {"reserve_inventory": await self._run_step(
            "reserve_inventory", OrderActivities.reserve_inventory,
            ReserveInventoryInput(idempotency_key=key("reserve_inventory"),
                                  order_id=order.order_id, items=order.items),
            _Undo("release_inventory", _bind(OrderActivities.release_inventory,
                                             _undo_input(key("reserve_inventory"), order))),
            undo)}
        try:
            await self._approval.run(inbound, waiting=self._awaiting_approval,
                                     retry=STEP_RETRY)
        except ApprovalRefused as refused:
            raise _StepFailed("approval", refused.reason, refused.error) from refused
        ids["charge_payment"] = await self._run_step(
            "charge_payment", OrderActivities.charge_payment,
            ChargePaymentInput(idempotency_key=key("charge_payment"), order_id=order.order_id,
                               amount_cents=order.amount_cents, currency=order.currency),
            _Undo("refund_payment", _bind(OrderActivities.refund_payment,
                                          _undo_input(key("charge_payment"), order))),
            undo)
        ids["create_shipment"] = await self._run_step(
            "create_shipment", OrderActivities.create_shipment,
            CreateShipmentInput(idempotency_key=key("create_shipment"),
                                order_id=order.order_id, country=order.shipping_country),
            _Undo("cancel_shipment", _bind(OrderActivities.cancel_shipment,
                                           _undo_input(key("create_shipment"), order))),
            undo)
        return ids

    async def _run_step(self, step: str, activity_fn: Callable[..., Any], request: BaseModel,
                    compensation: _Undo, undo: list[_Undo]) -> str:
        # Registered before the step runs: it may take effect and still report failure.
        undo.append(compensation)
        self._step = step
        try:
            result: StepResult = await workflow.execute_activity_method(
                activity_fn, request, start_to_close_timeout=activity_timeouts().order_step,
                retry_policy=STEP_RETRY,
            )
        except ActivityError as error:
            if is_cancelled_exception(error):
                # The workflow itself was cancelled while this step ran.
                raise asyncio.CancelledError from error
            raise _classify(step, error) from error
        self._completed.append(step)
        return result.id

    def _awaiting_approval(self) -> None:
        self._step = "awaiting_approval"

    async def _compensate(self, undo: list[_Undo]) -> None:
        self._step = "compensating"
        for item in reversed(undo):
            result = await item.run()
            if result.undone:
                self._compensations.append(item.name)

    async def _fail(self, inbound: Inbound[OrderPlaced], reason: str, step: str | None,
                    error: str) -> OrderSagaResult:
        self._step = "publishing"
        event_id = outcome_event_id(workflow.info().workflow_id, "failed")
        failed = OrderFailed(
            event_id=event_id, occurred_at=workflow.now(),
            correlation_id=inbound.meta.correlation_id, causation_id=inbound.meta.event_id,
            order_id=inbound.event.order_id, reason=reason, failed_step=step, error=error[:1000],
            compensations=tuple(self._compensations),
        )
        await publish_outcome(ORDERS_OUTCOMES, failed, inbound.meta.traceparent)
        self._step = "done"
        return OrderSagaResult(outcome="OrderFailed", reason=reason,
                               compensations=list(self._compensations),
                               outcome_event_id=str(event_id))



def _undo_input(step_key: str, order: OrderPlaced) -> CompensationInput:
    return CompensationInput(idempotency_key=step_key, order_id=order.order_id)


def _bind(undo_fn: Callable[..., Any], request: CompensationInput,
          ) -> Callable[[], Awaitable[CompensationResult]]:
    def run() -> Awaitable[CompensationResult]:
        return workflow.execute_activity_method(
            undo_fn, request, start_to_close_timeout=activity_timeouts().order_step,
            retry_policy=COMPENSATION_RETRY,
        )

    return run


def _classify(step: str, error: ActivityError) -> _StepFailed:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type in _REASONS:
        return _StepFailed(step, _REASONS[cause.type], cause.message)
    return _StepFailed(step, "step_failed", str(cause or error))
