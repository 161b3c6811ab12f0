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
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.approvals import ApprovalPolicy, ApprovalPolicyProvider
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
    from schemas import (
        ApprovalDecided,
        ApprovalEscalated,
        ApprovalRequested,
        ApprovalTimedOut,
        Inbound,
        OrderCompleted,
        OrderFailed,
        OrderPlaced,
        Outcome,
    )

__all__ = [
    "APPROVAL_SIGNAL",
    "OUTCOME_NAMESPACE",
    "PUBLISH_RETRY",
    "ApprovalState",
    "OrderSaga",
    "OrderSagaResult",
    "SagaStatus",
    "approval_id_for",
    "outcome_event_id",
    "publish_outcome",
]

APPROVAL_SIGNAL = "approval_decided"
SEEN_EVENT_IDS = 1000
"""Signal event ids remembered for de-duplication (bounded: history stays small)."""

ORDERS_OUTCOMES = "orders.outcomes"

OUTCOME_NAMESPACE = uuid.UUID("6f1c3c52-7b7e-4d59-9d0b-0d7f2a5f9a11")
"""uuid5 namespace of outcome event ids."""

STEP_TIMEOUT = timedelta(seconds=10)
"""Store steps take milliseconds; a step whose worker died is retried after this long."""
PUBLISH_TIMEOUT = timedelta(seconds=15)
"""One acks=all produce, including the producer's own retries of a broker hiccup."""
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


def approval_id_for(order_id: str) -> str:
    """The approval id of an order: known before the request, so early decisions match."""
    return f"approval-{order_id}"


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


class ApprovalState(BaseModel):
    """Answer of the ``approval`` query.

    Attributes:
        required: Whether this order needs approval at all.
        approval_id: Id to quote in ``ApprovalDecided``.
        status: ``not-required``, ``pending`` (not asked yet), ``waiting``,
            ``approved``, ``rejected`` or ``timed-out``.
        approver: Who must decide now.
        waiting_since: When the current wait began.
        deadline: When the current wait ends.
        escalated: Whether the request escalated.
        decided_by: Who decided, once decided.
        ignored: Decisions that did not count, with why.
    """

    required: bool = False
    approval_id: str = ""
    status: str = "pending"
    approver: str = ""
    waiting_since: datetime | None = None
    deadline: datetime | None = None
    escalated: bool = False
    decided_by: str = ""
    ignored: list[str] = []


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
        self._approval = ApprovalState()
        self._decision: ApprovalDecided | None = None
        self._seen: deque[str] = deque(maxlen=SEEN_EVENT_IDS)
        self._order_id = ""

    @workflow.signal(name=APPROVAL_SIGNAL)
    def approval_decided(self, inbound: Inbound[ApprovalDecided]) -> None:
        """A person's decision; may arrive before the saga asks (it is kept)."""
        event_id = inbound.meta.event_id
        if event_id in self._seen:
            return  # a redelivered signal: one effect only
        self._seen.append(event_id)
        decision = inbound.event
        expected = approval_id_for(decision.order_id)
        why = ""
        if decision.approval_id != expected:
            why = f"unknown approval id {decision.approval_id}"
        elif self._decision is not None:
            why = f"already decided by {self._decision.decided_by}"
        elif self._approval.status in {"not-required", "timed-out"}:
            why = f"approval {self._approval.status}"
        if why:
            note = f"{decision.decision} by {decision.decided_by} ignored: {why}"
            self._approval.ignored.append(note)
            workflow.logger.warning("order %s: %s", decision.order_id, note)
            return
        self._decision = decision

    @workflow.query(name="approval")
    def approval(self) -> ApprovalState:
        """Whether approval is needed, who must decide, since when and until when."""
        return self._approval.model_copy(deep=True)

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
        await self._approve(inbound)
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
                activity_fn, request, start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
        except ActivityError as error:
            if is_cancelled_exception(error):
                # The workflow itself was cancelled while this step ran.
                raise asyncio.CancelledError from error
            raise _classify(step, error) from error
        self._completed.append(step)
        return result.id

    async def _approve(self, inbound: Inbound[OrderPlaced]) -> None:
        """Ask for approval when the policy says so; raise _StepFailed unless approved."""
        order = inbound.event
        policy: ApprovalPolicy = await workflow.execute_activity_method(
            ApprovalPolicyProvider.approval_policy, start_to_close_timeout=timedelta(seconds=10),
            retry_policy=STEP_RETRY,
        )
        approval = self._approval
        approval.approval_id = approval_id_for(order.order_id)
        if order.amount_cents < policy.threshold_cents:
            approval.status = "not-required"
            return
        approval.required = True
        self._step = "awaiting_approval"
        first = order.approval_timeout_seconds or policy.timeout_seconds
        second = order.approval_timeout_seconds or policy.escalation_timeout_seconds
        started = workflow.now()
        stages = ((policy.approver, first), (policy.escalation_approver, second))
        for stage, (approver, seconds) in enumerate(stages):
            approval.status, approval.approver = "waiting", approver
            approval.waiting_since = workflow.now()
            approval.deadline = approval.waiting_since + timedelta(seconds=seconds)
            await publish_outcome(ORDERS_OUTCOMES, self._approval_event(inbound, stage, policy),
                                  inbound.meta.traceparent)
            try:
                await workflow.wait_condition(lambda: self._decision is not None,
                                              timeout=timedelta(seconds=seconds))
            except TimeoutError:
                continue
            decision = self._decision
            assert decision is not None
            approval.decided_by = decision.decided_by
            if decision.decision == "APPROVED":
                approval.status = "approved"
                return
            approval.status = "rejected"
            comment = f": {decision.comment}" if decision.comment else ""
            raise _StepFailed("approval", "rejected",
                              f"rejected by {decision.decided_by}{comment}")
        approval.status = "timed-out"
        waited = int((workflow.now() - started).total_seconds())
        await publish_outcome(ORDERS_OUTCOMES, ApprovalTimedOut(
            event_id=outcome_event_id(workflow.info().workflow_id, "approval-timed-out"),
            occurred_at=workflow.now(), correlation_id=inbound.meta.correlation_id,
            causation_id=inbound.meta.event_id, order_id=order.order_id,
            approval_id=approval.approval_id, waited_seconds=waited,
            last_approver=approval.approver), inbound.meta.traceparent)
        raise _StepFailed("approval", "approval_timed_out",
                          f"no decision from {policy.approver} or {policy.escalation_approver}"
                          f" within {waited}s")

    def _approval_event(self, inbound: Inbound[OrderPlaced], stage: int,
                        policy: ApprovalPolicy) -> Outcome:
        order, approval = inbound.event, self._approval
        assert approval.deadline is not None
        common: dict[str, Any] = {
            "occurred_at": workflow.now(), "correlation_id": inbound.meta.correlation_id,
            "causation_id": inbound.meta.event_id, "order_id": order.order_id,
            "approval_id": approval.approval_id, "deadline": approval.deadline,
        }
        wid = workflow.info().workflow_id
        if stage == 0:
            return ApprovalRequested.model_validate(common | {
                "event_id": outcome_event_id(wid, "approval-requested"),
                "amount_cents": order.amount_cents, "currency": order.currency,
                "approver": approval.approver})
        approval.escalated = True
        return ApprovalEscalated.model_validate(common | {
            "event_id": outcome_event_id(wid, "approval-escalated"),
            "previous_approver": policy.approver, "approver": approval.approver})

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



async def publish_outcome(topic: str, event: Outcome, traceparent: str, *,
                          attempt_timeout: timedelta = PUBLISH_TIMEOUT) -> None:
    """Publish a workflow's outcome event through the ``publish_outcome`` activity.

    Args:
        topic: The outcome topic.
        event: The event; its id must be deterministic (``outcome_event_id``).
        traceparent: Tracing context of the event that caused it.
        attempt_timeout: Start-to-close timeout of one attempt.
    """
    await workflow.execute_activity_method(
        OutcomePublisher.publish_outcome,
        PublishOutcomeInput(topic=topic, event_type=event.avro_name,
                            event=event.model_dump(mode="json"), traceparent=traceparent),
        start_to_close_timeout=attempt_timeout,
        retry_policy=PUBLISH_RETRY,
    )


def _undo_input(step_key: str, order: OrderPlaced) -> CompensationInput:
    return CompensationInput(idempotency_key=step_key, order_id=order.order_id)


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
