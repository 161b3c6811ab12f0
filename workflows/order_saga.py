"""``OrderSaga``: reserve inventory → charge payment → create shipment, compensated.

Each compensation is registered *before* its step runs: a step can take
effect and still report failure (a timeout after the write), so the undo must
be on the list either way; compensations are idempotent and a no-op when
there is nothing to undo. On a failed step or a cancellation the registered
compensations run in reverse order, then the outcome (``OrderCompleted`` or
``OrderFailed``) is published to ``orders.outcomes`` through an activity.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.orders import (
        BUSINESS_ERRORS,
        ChargePaymentInput,
        CompensationInput,
        CompensationResult,
        CreateShipmentInput,
        OrderActivities,
        ReserveInventoryInput,
        StepResult,
    )
    from activities.outcomes import OutcomePublisher, PublishOutcomeInput
    from schemas import Inbound, OrderCompleted, OrderFailed, OrderPlaced, Outcome

__all__ = ["OUTCOME_NAMESPACE", "OrderSaga", "OrderSagaResult", "SagaStatus", "outcome_event_id"]

ORDERS_OUTCOMES = "orders.outcomes"

OUTCOME_NAMESPACE = uuid.UUID("6f1c3c52-7b7e-4d59-9d0b-0d7f2a5f9a11")
"""uuid5 namespace of outcome event ids."""

STEP_TIMEOUT = timedelta(seconds=30)
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
PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["InvalidOutcome"],
)

_REASONS = {
    "OutOfStock": "out_of_stock",
    "PaymentDeclined": "payment_declined",
    "ShipmentRejected": "shipment_failed",
    "InvalidOrder": "invalid_order",
}


def outcome_event_id(workflow_id: str, outcome: str) -> uuid.UUID:
    """Deterministic id of an outcome event: the same on every replay and retry."""
    return uuid.uuid5(OUTCOME_NAMESPACE, f"{workflow_id}/{outcome}")


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


@workflow.defn(name="OrderSaga")
class OrderSaga:
    """One order's saga; workflow id ``order-<order_id>``."""

    def __init__(self) -> None:
        self._step = "starting"
        self._completed: list[str] = []
        self._compensations: list[str] = []

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
            ids = await self._steps(order, undo)
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
        await self._publish(completed, inbound.meta.traceparent)
        self._step = "done"
        return OrderSagaResult(outcome="OrderCompleted", outcome_event_id=str(event_id))

    async def _steps(self, order: OrderPlaced, undo: list[_Undo]) -> dict[str, str]:
        wid = workflow.info().workflow_id

        def key(step: str) -> str:
            return f"{wid}/{step}"

        steps: list[tuple[str, str, Callable[..., Any], BaseModel, Callable[..., Any]]] = [
            ("reserve_inventory", "release_inventory", OrderActivities.reserve_inventory,
             ReserveInventoryInput(idempotency_key=key("reserve_inventory"),
                                   order_id=order.order_id, items=order.items),
             OrderActivities.release_inventory),
            ("charge_payment", "refund_payment", OrderActivities.charge_payment,
             ChargePaymentInput(idempotency_key=key("charge_payment"), order_id=order.order_id,
                                amount_cents=order.amount_cents, currency=order.currency),
             OrderActivities.refund_payment),
            ("create_shipment", "cancel_shipment", OrderActivities.create_shipment,
             CreateShipmentInput(idempotency_key=key("create_shipment"),
                                 order_id=order.order_id, country=order.shipping_country),
             OrderActivities.cancel_shipment),
        ]
        ids: dict[str, str] = {}
        for step, compensation, activity_fn, request, undo_fn in steps:
            undo_input = CompensationInput(idempotency_key=key(step), order_id=order.order_id)
            undo.append(_Undo(compensation, _bind(undo_fn, undo_input)))
            self._step = step
            try:
                result: StepResult = await workflow.execute_activity_method(
                    activity_fn, request, start_to_close_timeout=STEP_TIMEOUT,
                    retry_policy=STEP_RETRY,
                )
            except ActivityError as error:
                if is_cancelled_exception(error):
                    # The workflow itself was cancelled while this step ran.
                    raise asyncio.CancelledError from error
                raise _classify(step, error) from error
            ids[step] = result.id
            self._completed.append(step)
        return ids

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
        await self._publish(failed, inbound.meta.traceparent)
        self._step = "done"
        return OrderSagaResult(outcome="OrderFailed", reason=reason,
                               compensations=list(self._compensations),
                               outcome_event_id=str(event_id))

    @staticmethod
    async def _publish(event: Outcome, traceparent: str) -> None:
        await workflow.execute_activity_method(
            OutcomePublisher.publish_outcome,
            PublishOutcomeInput(topic=ORDERS_OUTCOMES, event_type=event.avro_name,
                                event=event.model_dump(mode="json"), traceparent=traceparent),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PUBLISH_RETRY,
        )


def _bind(undo_fn: Callable[..., Any], request: CompensationInput,
          ) -> Callable[[], Awaitable[CompensationResult]]:
    def run() -> Awaitable[CompensationResult]:
        return workflow.execute_activity_method(
            undo_fn, request, start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=COMPENSATION_RETRY,
        )

    return run


def _classify(step: str, error: ActivityError) -> _StepFailed:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type in _REASONS:
        return _StepFailed(step, _REASONS[cause.type], cause.message)
    return _StepFailed(step, "step_failed", str(cause or error))
